#include "worker/kernel.h"

#include <dlfcn.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace peergrid::worker {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::string ToHex(const unsigned char* digest, unsigned int size) {
  std::string out(size * 2, '0');
  for (unsigned int i = 0; i < size; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

absl::StatusOr<uint64_t> ParseMs(absl::string_view arg, absl::string_view k) {
  uint64_t ms = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(arg), &ms) ||
      ms > 24ull * 3600 * 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        k,
        ": argument must be milliseconds as decimal text (0..86400000), "
        "got '",
        arg.substr(0, 40), "'"));
  }
  return ms;
}

absl::StatusOr<std::string> Sleep(const KernelContext& ctx) {
  auto ms = ParseMs(ctx.argument(), "sleep");
  if (!ms.ok()) return ms.status();
  const absl::Time end = absl::Now() + absl::Milliseconds(*ms);
  for (absl::Time now = absl::Now(); now < end; now = absl::Now()) {
    if (ctx.cancelled()) return absl::CancelledError("sleep: cancelled");
    absl::SleepFor(std::min(end - now, absl::Milliseconds(5)));
  }
  return std::string();
}

absl::StatusOr<std::string> Spin(const KernelContext& ctx) {
  auto ms = ParseMs(ctx.argument(), "spin");
  if (!ms.ok()) return ms.status();
  // CPU time of this thread, so that "spin 100" is 100 ms of work even on
  // a contended machine.
  auto cpu_ns = [] {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  };
  const int64_t end = cpu_ns() + static_cast<int64_t>(*ms) * 1000000;
  volatile uint64_t sink = 0;
  while (cpu_ns() < end) {
    for (int i = 0; i < 10000; ++i) sink = sink * 6364136223846793005ull + 1;
    if (ctx.cancelled()) return absl::CancelledError("spin: cancelled");
  }
  return std::string();
}

absl::StatusOr<std::string> Sha256Kernel(const KernelContext& ctx) {
  if (!ctx.input_path().empty()) return Sha256HexOfFile(ctx.input_path());
  return Sha256Hex(ctx.argument());
}

// Counts primes p with A <= p <= B by a segmented sieve.
absl::StatusOr<std::string> Primes(const KernelContext& ctx) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::StripAsciiWhitespace(ctx.argument()),
                     absl::ByAnyChar(" ,\t\n"), absl::SkipEmpty());
  uint64_t lo = 0, hi = 0;
  bool ok = false;
  if (parts.size() == 1) {
    ok = absl::SimpleAtoi(parts[0], &hi);
  } else if (parts.size() == 2) {
    ok = absl::SimpleAtoi(parts[0], &lo) && absl::SimpleAtoi(parts[1], &hi);
  }
  constexpr uint64_t kMaxHi = 1'000'000'000'000ull;
  constexpr uint64_t kMaxSpan = 10'000'000'000ull;
  if (!ok || lo > hi || hi > kMaxHi || hi - lo > kMaxSpan) {
    return absl::InvalidArgumentError(absl::StrCat(
        "primes: argument must be \"B\" or \"A B\" (decimal, A <= B <= 1e12, "
        "B - A <= 1e10), got '",
        ctx.argument().substr(0, 40), "'"));
  }
  lo = std::max<uint64_t>(lo, 2);
  if (hi < lo) return std::string("0");
  uint64_t root = static_cast<uint64_t>(std::sqrt(static_cast<double>(hi)));
  while (root * root > hi) --root;
  while ((root + 1) * (root + 1) <= hi) ++root;
  std::vector<uint32_t> base;
  {
    std::vector<bool> composite(root + 1, false);
    for (uint64_t i = 2; i <= root; ++i) {
      if (composite[i]) continue;
      base.push_back(static_cast<uint32_t>(i));
      for (uint64_t j = i * i; j <= root; j += i) composite[j] = true;
    }
  }
  constexpr uint64_t kSegment = 1 << 18;
  std::vector<char> seg(kSegment);
  uint64_t count = 0;
  for (uint64_t start = lo; start <= hi; start += kSegment) {
    if (ctx.cancelled()) return absl::CancelledError("primes: cancelled");
    const uint64_t end = std::min(hi, start + kSegment - 1);
    std::fill(seg.begin(), seg.begin() + static_cast<long>(end - start + 1), 1);
    for (uint32_t p : base) {
      const uint64_t pp = uint64_t{p} * p;
      if (pp > end) break;
      uint64_t first = std::max(pp, (start + p - 1) / p * p);
      for (uint64_t j = first; j <= end; j += p) seg[j - start] = 0;
    }
    count += static_cast<uint64_t>(std::count(
        seg.begin(), seg.begin() + static_cast<long>(end - start + 1), 1));
    if (end == hi) break;
  }
  return absl::StrCat(count);
}

}  // namespace

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  return ToHex(digest, size);
}

absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    EVP_DigestUpdate(md, buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(md, digest, &size);
  EVP_MD_CTX_free(md);
  if (failed) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return ToHex(digest, size);
}

std::unique_ptr<KernelRegistry> KernelRegistry::WithBuiltins() {
  auto r = std::make_unique<KernelRegistry>();
  (void)r->Register("noop",
                    [](const KernelContext&) -> absl::StatusOr<std::string> {
                      return std::string();
                    });
  (void)r->Register("echo",
                    [](const KernelContext& c) -> absl::StatusOr<std::string> {
                      return std::string(c.argument());
                    });
  (void)r->Register("sleep", Sleep);
  (void)r->Register("spin", Spin);
  (void)r->Register("sha256", Sha256Kernel);
  (void)r->Register("primes", Primes);
  return r;
}

absl::Status KernelRegistry::Register(absl::string_view name, KernelFn fn) {
  if (name.empty() || !fn) {
    return absl::InvalidArgumentError("kernel needs a name and a function");
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = kernels_.try_emplace(std::string(name), nullptr);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("kernel '", name, "' is already registered"));
  }
  it->second = std::make_unique<KernelFn>(std::move(fn));
  return absl::OkStatus();
}

const KernelFn* KernelRegistry::Find(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = kernels_.find(name);
  return it == kernels_.end() ? nullptr : it->second.get();
}

std::vector<std::string> KernelRegistry::Names() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, fn] : kernels_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status LoadKernelPlugin(const std::string& path,
                              KernelRegistry& registry) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return absl::NotFoundError(absl::StrCat("cannot load kernel plugin ", path,
                                            ": ", err ? err : "?"));
  }
  using RegisterFn = int (*)(KernelRegistry*);
  auto fn = reinterpret_cast<RegisterFn>(dlsym(handle, kPluginRegisterSymbol));
  if (fn == nullptr) {
    dlclose(handle);
    return absl::FailedPreconditionError(absl::StrCat(
        "kernel plugin ", path, " does not export ", kPluginRegisterSymbol));
  }
  const int rc = fn(&registry);
  if (rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "kernel plugin ", path, ": registration failed with code ", rc));
  }
  return absl::OkStatus();
}

}  // namespace peergrid::worker
