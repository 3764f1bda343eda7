#include <gtest/gtest.h>

#include "common/machine.h"
#include "node/node.h"

namespace peergrid {
namespace {

NodeOptions Valid() {
  NodeOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics = "";
  return options;
}

TEST(ValidateNodeOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateNodeOptions(NodeOptions()).ok());
}

TEST(ValidateNodeOptionsTest, NonLoopbackNeedsInsecure) {
  NodeOptions options = Valid();
  options.listen = "10.0.0.1:7420";
  options.advertise = "10.0.0.1:7420";
  absl::Status status = ValidateNodeOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("--insecure"), std::string::npos) << status;
  options.insecure = true;
  EXPECT_TRUE(ValidateNodeOptions(options).ok());
}

TEST(ValidateNodeOptionsTest, WildcardListenNeedsAdvertise) {
  NodeOptions options = Valid();
  options.listen = "0.0.0.0:7420";
  options.insecure = true;
  absl::Status status = ValidateNodeOptions(options);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("--advertise"), std::string::npos) << status;
  options.advertise = "0.0.0.0:7420";
  EXPECT_FALSE(ValidateNodeOptions(options).ok());
  options.advertise = "192.0.2.7:7420";
  EXPECT_TRUE(ValidateNodeOptions(options).ok());
}

TEST(ValidateNodeOptionsTest, CoresWithinTheMachine) {
  NodeOptions options = Valid();
  options.cores = MachineCores();
  EXPECT_TRUE(ValidateNodeOptions(options).ok());
  options.cores = MachineCores() + 1;
  EXPECT_FALSE(ValidateNodeOptions(options).ok());
  options.cores = -1;
  absl::Status status = ValidateNodeOptions(options);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("--cores"), std::string::npos) << status;
}

TEST(ValidateNodeOptionsTest, RejectsMalformedAddressesAndNames) {
  NodeOptions options = Valid();
  options.listen = "nowhere";
  EXPECT_FALSE(ValidateNodeOptions(options).ok());
  options = Valid();
  options.metrics = "127.0.0.1:99999";
  EXPECT_FALSE(ValidateNodeOptions(options).ok());
  options = Valid();
  options.name = "two words";
  EXPECT_FALSE(ValidateNodeOptions(options).ok());
}

}  // namespace
}  // namespace peergrid
