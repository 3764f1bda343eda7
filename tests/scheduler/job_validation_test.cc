#include "scheduler/job_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace peergrid::scheduler {
namespace {

using ::testing::HasSubstr;

v1::Job KernelJob(int tasks, const std::string& kernel = "noop") {
  v1::Job job;
  for (int i = 0; i < tasks; ++i)
    job.add_tasks()->mutable_kernel()->set_name(kernel);
  return job;
}

JobLimits Limits() {
  JobLimits limits;
  limits.kernel_known = [](const std::string& name) {
    return name == "noop" || name == "echo";
  };
  return limits;
}

absl::Status Check(v1::Job job) {
  NormalizeJob(job);
  return ValidateJob(job, Limits());
}

TEST(NormalizeJobTest, NumbersTasksAndAppliesDefaults) {
  v1::Job job = KernelJob(3);
  job.mutable_defaults()->set_cpus(2);
  job.mutable_defaults()->set_timeout_ms(500);
  job.mutable_tasks(1)->set_cpus(1);
  NormalizeJob(job);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(job.tasks(i).index(), static_cast<uint64_t>(i));
  EXPECT_EQ(job.tasks(0).cpus(), 2u);
  EXPECT_EQ(job.tasks(1).cpus(), 1u);
  EXPECT_EQ(job.tasks(2).timeout_ms(), 500);
}

TEST(ValidateJobTest, AcceptsAGoodJob) {
  EXPECT_TRUE(Check(KernelJob(5)).ok());
}

TEST(ValidateJobTest, RejectsAnEmptyJob) {
  EXPECT_THAT(Check(v1::Job()).message(), HasSubstr("no tasks"));
}

TEST(ValidateJobTest, RejectsAnUnknownKernelNamingIt) {
  absl::Status status = Check(KernelJob(2, "warp_drive"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("unknown kernel 'warp_drive'"));
  EXPECT_THAT(status.message(), HasSubstr("task 0"));
}

TEST(ValidateJobTest, RejectsATaskOfNoKindAndEmptyCommands) {
  v1::Job job = KernelJob(1);
  job.add_tasks();
  EXPECT_THAT(Check(job).message(), HasSubstr("task 1: has neither"));
  v1::Job exec;
  exec.add_tasks()->mutable_exec();
  EXPECT_THAT(Check(exec).message(), HasSubstr("command is empty"));
}

TEST(ValidateJobTest, RejectsDuplicateAndOutOfRangeIndexes) {
  v1::Job job = KernelJob(2);
  job.mutable_tasks(0)->set_index(1);
  job.mutable_tasks(1)->set_index(1);
  EXPECT_THAT(Check(job).message(), HasSubstr("index used by another task"));
  job.mutable_tasks(0)->set_index(7);
  EXPECT_THAT(Check(job).message(), HasSubstr("out of range"));
}

TEST(ValidateJobTest, RejectsAbsurdResources) {
  v1::Job job = KernelJob(1);
  job.mutable_tasks(0)->set_cpus(100000);
  EXPECT_THAT(Check(job).message(), HasSubstr("cpus"));
  job = KernelJob(1);
  job.mutable_tasks(0)->set_timeout_ms(-5);
  EXPECT_THAT(Check(job).message(), HasSubstr("timeout"));
}

TEST(ValidateJobTest, InputsMustNameCarriedBlobsAndStayInside) {
  v1::Job job;
  v1::Task* task = job.add_tasks();
  task->mutable_exec()->add_argv("cat");
  v1::InputFile* input = task->mutable_exec()->add_inputs();
  input->set_path("data.txt");
  input->set_blob_sha256(Sha256Hex("hello"));
  EXPECT_THAT(Check(job).message(), HasSubstr("does not carry"));
  v1::Blob* blob = job.add_blobs();
  blob->set_data("hello");
  blob->set_sha256(Sha256Hex("hello"));
  EXPECT_TRUE(Check(job).ok());
  job.mutable_tasks(0)->mutable_exec()->mutable_inputs(0)->set_path("../x");
  EXPECT_THAT(Check(job).message(), HasSubstr("must be relative"));
}

TEST(ValidateJobTest, RejectsABlobThatDoesNotMatchItsHash) {
  v1::Job job = KernelJob(1);
  v1::Blob* blob = job.add_blobs();
  blob->set_data("hello");
  blob->set_sha256(Sha256Hex("goodbye"));
  EXPECT_THAT(Check(job).message(), HasSubstr("does not match"));
}

TEST(Sha256HexTest, MatchesAKnownDigest) {
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace peergrid::scheduler
