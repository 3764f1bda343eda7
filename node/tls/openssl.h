// What the TLS code shares of OpenSSL's libcrypto: owning pointers for its
// objects, its error text, and reading PEM files. Private to node/tls.
//
// Thread safety: functions of their arguments (OpenSSL's error queue is per
// thread).
#ifndef PEERGRID_NODE_TLS_OPENSSL_H_
#define PEERGRID_NODE_TLS_OPENSSL_H_

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace peergrid::tls {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Crl = std::unique_ptr<X509_CRL, Deleter<X509_CRL, X509_CRL_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX,
                                 Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

// OpenSSL's reason for the last failure, for an error message; clears the
// thread's error queue.
std::string OpenSslError();
// Internal: `what` failed, with OpenSSL's reason.
absl::Status CryptoError(absl::string_view what);

// The whole file; NotFound naming the path and errno's text.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// The first certificate of PEM text; InvalidArgument if there is none.
absl::StatusOr<Cert> ParsePemCert(absl::string_view pem);
// The first private key of PEM text; InvalidArgument if there is none.
absl::StatusOr<PKey> ParsePemKey(absl::string_view pem);

}  // namespace peergrid::tls

#endif  // PEERGRID_NODE_TLS_OPENSSL_H_
