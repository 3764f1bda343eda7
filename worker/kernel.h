// Kernels: functions compiled into the node (or loaded from a plugin) that a
// task calls by name with a bytes argument and that return bytes.
//
// A kernel runs on one of the worker's arena threads and must not block for
// long without looking at `ctx.cancelled()`: a cancelled or timed-out task
// is abandoned only when the kernel returns. A kernel returns an error
// Status to fail its task; the message becomes the result's reason.
//
// Thread safety: KernelRegistry is safe for concurrent Find() and Register();
// kernels themselves are called concurrently from several threads.
#ifndef PEERGRID_WORKER_KERNEL_H_
#define PEERGRID_WORKER_KERNEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace peergrid::worker {

// What a kernel sees of its task.
class KernelContext {
 public:
  KernelContext(absl::string_view argument, std::string input_path,
                const std::atomic<bool>* cancel_flag, absl::Time deadline)
      : argument_(argument),
        input_path_(std::move(input_path)),
        cancel_flag_(cancel_flag),
        deadline_(deadline) {}

  absl::string_view argument() const { return argument_; }
  // Path of the task's input blob in the blob cache (read only), or empty.
  const std::string& input_path() const { return input_path_; }
  // True once the task is cancelled or past its deadline; long kernels
  // should return promptly (any status) when it becomes true.
  bool cancelled() const {
    return (cancel_flag_ != nullptr &&
            cancel_flag_->load(std::memory_order_relaxed)) ||
           (deadline_ != absl::InfiniteFuture() && absl::Now() >= deadline_);
  }
  absl::Time deadline() const { return deadline_; }

 private:
  absl::string_view argument_;
  std::string input_path_;
  const std::atomic<bool>* cancel_flag_;
  absl::Time deadline_;
};

using KernelFn =
    std::function<absl::StatusOr<std::string>(const KernelContext& ctx)>;

class KernelRegistry {
 public:
  // A registry with the built-in kernels: noop, echo, sleep, spin, sha256,
  // primes (see docs/worker.md for their arguments).
  static std::unique_ptr<KernelRegistry> WithBuiltins();
  KernelRegistry() = default;
  virtual ~KernelRegistry() = default;

  // Fails with AlreadyExists if `name` is taken, InvalidArgument if empty.
  // Virtual so that a plugin calls it through the vtable and needs no
  // symbols from the node binary.
  virtual absl::Status Register(absl::string_view name, KernelFn fn);
  // Nullptr if unknown. The pointer stays valid for the registry's life
  // (kernels are never removed).
  const KernelFn* Find(absl::string_view name) const;
  std::vector<std::string> Names() const;

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<KernelFn>> kernels_
      ABSL_GUARDED_BY(mu_);
};

// Loads a shared library and calls its exported C function
//   extern "C" int peergrid_register_kernels(peergrid::worker::KernelRegistry*)
// which registers kernels and returns 0 on success. The library is never
// unloaded. Errors: NotFound/FailedPrecondition with dlerror()'s text.
absl::Status LoadKernelPlugin(const std::string& path,
                              KernelRegistry& registry);

// The symbol a plugin exports.
inline constexpr char kPluginRegisterSymbol[] = "peergrid_register_kernels";

// Lower-case hex SHA-256 helpers (OpenSSL libcrypto).
std::string Sha256Hex(absl::string_view data);
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path);

}  // namespace peergrid::worker

#endif  // PEERGRID_WORKER_KERNEL_H_
