// Helpers for the worker tests: waiting on conditions with deadlines.
#ifndef PEERGRID_TESTS_WORKER_TEST_UTIL_H_
#define PEERGRID_TESTS_WORKER_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace peergrid::worker::testing {

// Polls `pred` until it holds or `timeout` passes.
inline ::testing::AssertionResult Eventually(
    const std::function<bool()>& pred, absl::Duration timeout,
    const std::string& what = "condition") {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (pred()) return ::testing::AssertionSuccess();
    absl::SleepFor(absl::Milliseconds(2));
  }
  if (pred()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << " did not hold within " << absl::FormatDuration(timeout);
}

// A fresh directory, removed on destruction; searchable and writable by
// everyone so that tasks running as `nobody` can use it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/peergrid_worker_test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
    chmod(path_.c_str(), 0777);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& data) const {
    const std::string p = absl::StrCat(path_, "/", name);
    std::ofstream(p, std::ios::binary) << data;
    return p;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(absl::StrCat(path_, "/", name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string path_;
};

inline bool ProcessGone(pid_t pid) {
  // A zombie counts as gone: it runs nothing.
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string s;
  if (!std::getline(in, s)) return true;
  const size_t p = s.rfind(')');
  return p != std::string::npos && p + 2 < s.size() && s[p + 2] == 'Z';
}

inline char ProcessState(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string s;
  if (!std::getline(in, s)) return '?';
  const size_t p = s.rfind(')');
  return p != std::string::npos && p + 2 < s.size() ? s[p + 2] : '?';
}

// A value set once from another thread.
template <typename T>
class Future {
 public:
  void Set(T v) {
    absl::MutexLock lock(&mu_);
    value_ = std::move(v);
    set_ = true;
  }
  // Waits up to `timeout`; false if not set.
  bool Wait(absl::Duration timeout, T* out) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&set_), timeout)) return false;
    *out = value_;
    return true;
  }

 private:
  absl::Mutex mu_;
  bool set_ = false;
  T value_;
};

}  // namespace peergrid::worker::testing

#endif  // PEERGRID_TESTS_WORKER_TEST_UTIL_H_
