// Waiting on a condition with a deadline, instead of sleeping.
#ifndef PEERGRID_TESTS_TESTING_EVENTUALLY_H_
#define PEERGRID_TESTS_TESTING_EVENTUALLY_H_

#include <gtest/gtest.h>

#include <functional>

#include "absl/time/time.h"

namespace peergrid::testing {

// Calls `condition` every `poll` until it succeeds or `timeout` passes.
// Returns the first success, or the last failure with how long it waited:
//   ASSERT_TRUE(Eventually([&] { return CheckMembers(3); }, absl::Seconds(5)));
::testing::AssertionResult Eventually(
    const std::function<::testing::AssertionResult()>& condition,
    absl::Duration timeout, absl::Duration poll = absl::Milliseconds(10));

}  // namespace peergrid::testing

#endif  // PEERGRID_TESTS_TESTING_EVENTUALLY_H_
