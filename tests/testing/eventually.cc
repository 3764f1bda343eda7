#include "tests/testing/eventually.h"

#include "absl/time/clock.h"

namespace peergrid::testing {

::testing::AssertionResult Eventually(
    const std::function<::testing::AssertionResult()>& condition,
    absl::Duration timeout, absl::Duration poll) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    ::testing::AssertionResult result = condition();
    if (result) return result;
    if (absl::Now() >= deadline) {
      return ::testing::AssertionFailure()
             << "still false after " << absl::FormatDuration(timeout) << ": "
             << result.message();
    }
    absl::SleepFor(poll);
  }
}

}  // namespace peergrid::testing
