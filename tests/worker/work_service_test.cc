// The Work service over real gRPC on 127.0.0.1 (port 0), with in-process
// client stubs playing the origins.
#include "worker/work_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "tests/worker/test_util.h"
#include "worker/kernel.h"

namespace peergrid::worker {
namespace {

using testing::Eventually;
using testing::Exec;
using ::testing::HasSubstr;
using testing::Kernel;
using testing::ProcessGone;
using testing::TempDir;

class MapBlobProvider : public BlobProvider {
 public:
  void Add(const std::string& sha, const std::string& data) {
    absl::MutexLock lock(&mu_);
    blobs_[sha] = data;
  }
  absl::StatusOr<std::string> ReadBlob(const std::string& sha,
                                       const std::string& /*requester*/) override {
    absl::MutexLock lock(&mu_);
    auto it = blobs_.find(sha);
    if (it == blobs_.end()) return absl::NotFoundError("no such blob");
    return it->second;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> blobs_ ABSL_GUARDED_BY(mu_);
};

// One origin's stream, driven synchronously from the test.
class TestOrigin {
 public:
  TestOrigin(const std::shared_ptr<grpc::Channel>& channel,
             const std::string& blob_address, uint32_t wanted,
             bool batches = false, const std::string& name = "test-origin")
      : stub_(v1::Work::NewStub(channel)), stream_(stub_->Open(&ctx_)) {
    v1::WorkFromOrigin m;
    m.mutable_open()->set_origin(name);
    m.mutable_open()->set_accept_batches(batches);
    m.mutable_open()->set_origin_address(blob_address);
    m.mutable_open()->set_slots_wanted(wanted);
    stream_->Write(m);
    reader_ = std::thread([this] {
      v1::WorkFromWorker in;
      while (stream_->Read(&in)) {
        absl::MutexLock lock(&mu_);
        if (in.has_credits()) {
          credits_ += static_cast<int>(in.credits().slots());
        } else if (in.has_batch()) {
          ++batches_;
          for (const auto& r : in.batch().results()) results_.push_back(r);
          credits_ += static_cast<int>(in.batch().credits().slots());
        } else {
          results_.push_back(in.result());
        }
      }
      absl::MutexLock lock(&mu_);
      read_done_ = true;
    });
  }
  ~TestOrigin() {
    if (!finished_) {
      ctx_.TryCancel();
      reader_.join();
      stream_->Finish();
    }
  }

  bool Send(const v1::WorkFromOrigin& m) { return stream_->Write(m); }
  bool SendTasks(const std::string& job, const std::vector<v1::Task>& tasks) {
    v1::WorkFromOrigin m;
    m.mutable_bundle()->set_job_id(job);
    for (const auto& t : tasks) *m.mutable_bundle()->add_tasks() = t;
    return Send(m);
  }
  // Waits for at least one credit, takes up to `max`.
  int TakeCredits(int max, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(
                             +[](int* c) { return *c > 0; }, &credits_),
                         timeout);
    const int n = std::min(max, credits_);
    credits_ -= n;
    return n;
  }
  // Waits for `n` credits and takes them; 0 on timeout.
  int Take(int n, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return credits_ >= n;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&enough), timeout)) return 0;
    credits_ -= n;
    return n;
  }
  std::vector<v1::WorkResult> WaitResults(
      size_t n, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return results_.size() >= n || read_done_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return results_;
  }
  void Cancel() { ctx_.TryCancel(); }
  int batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  grpc::Status HalfCloseAndFinish() {
    stream_->WritesDone();
    return WaitFinish();
  }
  // Waits for the worker to end the stream.
  grpc::Status WaitFinish() {
    reader_.join();
    finished_ = true;
    return stream_->Finish();
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<v1::Work::Stub> stub_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::WorkFromOrigin, v1::WorkFromWorker>>
      stream_;
  std::thread reader_;
  bool finished_ = false;
  absl::Mutex mu_;
  int credits_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::WorkResult> results_ ABSL_GUARDED_BY(mu_);
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  int batches_ ABSL_GUARDED_BY(mu_) = 0;
};

class WorkServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(0); }
  void Start(int prefetch_per_core,
             std::function<absl::StatusOr<std::string>(const std::string&)>
                 member_address = nullptr) {
    WorkerOptions o;
    o.cores = 2;
    o.prefetch_per_core = prefetch_per_core;
    o.data_dir = dir_.path() + "/data";
    o.node_name = "worker-under-test";
    worker_ = *Worker::Create(o, nullptr);
    WorkServiceOptions so;
    so.blob_provider = &blobs_;
    so.blob_chunk_bytes = 1000;  // Several chunks per blob.
    so.member_address = std::move(member_address);
    service_ = std::make_unique<WorkService>(*worker_, so);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
    channel_ =
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }
  void TearDown() override { Stop(); }
  void Stop() {
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
    server_.reset();
    service_.reset();
    worker_.reset();
  }
  std::unique_ptr<TestOrigin> Origin(uint32_t wanted) {
    return std::make_unique<TestOrigin>(channel_, address_, wanted);
  }

  TempDir dir_;
  MapBlobProvider blobs_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<WorkService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(WorkServiceTest, CreditsTasksAndResultsOverGrpc) {
  auto origin = Origin(4);
  ASSERT_EQ(origin->Take(2), 2);
  ASSERT_TRUE(origin->SendTasks(
      "job", {Kernel(0, "echo", "hi"), Exec(1, {"sh", "-c", "echo exec"})}));
  auto results = origin->WaitResults(2);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& wr : results) {
    EXPECT_EQ(wr.result().outcome(), v1::TASK_OUTCOME_SUCCEEDED)
        << wr.result().reason();
    EXPECT_EQ(wr.result().node(), "worker-under-test");
  }
  // Credits came back with the results; an excess task is refused.
  ASSERT_EQ(origin->Take(2), 2);
  ASSERT_TRUE(origin->SendTasks(
      "job",
      {Kernel(2, "noop", ""), Kernel(3, "noop", ""), Kernel(4, "noop", "")}));
  results = origin->WaitResults(5);
  ASSERT_EQ(results.size(), 5u);
  int refused = 0;
  for (size_t i = 2; i < 5; ++i) {
    if (results[i].result().outcome() == v1::TASK_OUTCOME_REJECTED) {
      ++refused;
      EXPECT_THAT(results[i].result().reason(), HasSubstr("no credit"));
    }
  }
  EXPECT_EQ(refused, 1);
  EXPECT_TRUE(origin->HalfCloseAndFinish().ok());
}

TEST_F(WorkServiceTest, HalfCloseWaitsForResults) {
  auto origin = Origin(1);
  ASSERT_EQ(origin->Take(1), 1);
  ASSERT_TRUE(origin->SendTasks("job", {Kernel(0, "sleep", "100")}));
  const grpc::Status status = origin->HalfCloseAndFinish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  auto results = origin->WaitResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result().outcome(), v1::TASK_OUTCOME_SUCCEEDED);
}

TEST_F(WorkServiceTest, ProtocolErrorsEndTheStream) {
  auto origin = std::make_unique<TestOrigin>(channel_, "", 0);
  // A second OpenWork is an error.
  v1::WorkFromOrigin again;
  again.mutable_open()->set_origin("x");
  origin->Send(again);
  const grpc::Status status = origin->HalfCloseAndFinish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Two origins flood a 2-core worker with exec and kernel tasks: running
// tasks never exceed the donated cores, every task runs exactly once, and
// both origins are served.
TEST_F(WorkServiceTest, TwoOriginsFloodingNeverExceedDonatedCores) {
  worker_->ResetPeak();
  constexpr int kTasks = 40;
  auto flood = [&](TestOrigin& origin, bool exec) {
    int sent = 0;
    while (sent < kTasks) {
      const int n = std::min(origin.TakeCredits(kTasks), kTasks - sent);
      if (n == 0) return;
      std::vector<v1::Task> tasks;
      for (int i = 0; i < n; ++i, ++sent) {
        tasks.push_back(
            exec ? Exec(static_cast<uint64_t>(sent), {"/bin/sleep", "0.005"})
                 : Kernel(static_cast<uint64_t>(sent), "spin", "3"));
      }
      origin.SendTasks(exec ? "exec-job" : "kernel-job", tasks);
    }
  };
  auto a = Origin(8);
  auto b = Origin(8);
  std::thread ta([&] { flood(*a, true); });
  std::thread tb([&] { flood(*b, false); });
  ta.join();
  tb.join();
  auto ra = a->WaitResults(kTasks);
  auto rb = b->WaitResults(kTasks);
  ASSERT_EQ(ra.size(), static_cast<size_t>(kTasks));
  ASSERT_EQ(rb.size(), static_cast<size_t>(kTasks));
  for (const auto* rs : {&ra, &rb}) {
    std::set<uint64_t> seen;
    for (const auto& wr : *rs) {
      EXPECT_EQ(wr.result().outcome(), v1::TASK_OUTCOME_SUCCEEDED)
          << wr.result().reason();
      seen.insert(wr.result().index());
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(kTasks));
  }
  const Worker::Stats st = worker_->stats();
  EXPECT_LE(st.peak_running, 2);
  EXPECT_LE(st.peak_busy, 2);
  EXPECT_GE(st.peak_running, 1);
}

// An origin that goes away: its running exec tasks are killed within a
// second, their slots freed.
TEST_F(WorkServiceTest, BrokenStreamStopsItsTasks) {
  auto origin = Origin(2);
  ASSERT_EQ(origin->Take(2), 2);
  std::vector<v1::Task> tasks;
  for (int i = 0; i < 2; ++i) {
    tasks.push_back(Exec(static_cast<uint64_t>(i),
                         {"sh", "-c",
                          absl::StrCat("echo $$ > ", dir_.path(), "/pid", i,
                                       "; exec sleep 60")}));
  }
  ASSERT_TRUE(origin->SendTasks("job", tasks));
  std::vector<pid_t> pids(2, 0);
  ASSERT_TRUE(Eventually(
      [&] {
        for (int i = 0; i < 2; ++i) {
          std::ifstream in(absl::StrCat(dir_.path(), "/pid", i));
          if (!(in >> pids[static_cast<size_t>(i)])) return false;
        }
        return true;
      },
      absl::Seconds(10), "both tasks started"));
  const absl::Time t0 = absl::Now();
  origin->Cancel();
  EXPECT_TRUE(
      Eventually([&] { return ProcessGone(pids[0]) && ProcessGone(pids[1]); },
                 absl::Seconds(1), "tasks killed"));
  EXPECT_TRUE(Eventually([&] { return worker_->stats().running == 0; },
                         absl::Seconds(1), "slots freed"));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  // The freed slots go to the next origin.
  auto next = Origin(2);
  EXPECT_EQ(next->Take(2), 2);
}

// Gossip declared the origin dead: its streams end at once and its tasks
// stop, as if its call had broken; other origins' streams go on.
TEST_F(WorkServiceTest, StreamsOfAnOriginDeclaredDeadEnd) {
  TestOrigin dead(channel_, address_, 1, false, "dead-origin");
  TestOrigin live(channel_, address_, 1, false, "live-origin");
  ASSERT_EQ(dead.Take(1), 1);
  ASSERT_TRUE(dead.SendTasks("job", {Exec(0, {"sleep", "60"})}));
  ASSERT_TRUE(Eventually([&] { return worker_->stats().running == 1; },
                         absl::Seconds(5), "the task started"));
  EXPECT_EQ(service_->CancelStreamsFrom("nobody"), 0);
  EXPECT_EQ(service_->CancelStreamsFrom("dead-origin"), 1);
  EXPECT_EQ(dead.WaitFinish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return worker_->stats().running == 0; },
                         absl::Seconds(1), "the task stopped"));
  EXPECT_TRUE(Eventually(
      [&] { return service_->CancelStreamsFrom("dead-origin") == 0; },
      absl::Seconds(1), "the ended stream unlisted"));
  ASSERT_EQ(live.Take(1), 1);
  ASSERT_TRUE(live.SendTasks("job", {Kernel(0, "sleep", "10")}));
  EXPECT_EQ(live.WaitResults(1).size(), 1u);
}

TEST_F(WorkServiceTest, CancelWorkStopsAJobWithinASecond) {
  auto origin = Origin(2);
  ASSERT_EQ(origin->Take(2), 2);
  ASSERT_TRUE(origin->SendTasks(
      "job", {Exec(0, {"sleep", "60"}), Kernel(1, "sleep", "60000")}));
  ASSERT_TRUE(Eventually([&] { return worker_->stats().running == 2; },
                         absl::Seconds(5)));
  const absl::Time t0 = absl::Now();
  v1::WorkFromOrigin cancel;
  cancel.mutable_cancel()->set_job_id("job");
  origin->Send(cancel);
  auto results = origin->WaitResults(2, absl::Seconds(1));
  ASSERT_EQ(results.size(), 2u);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(1));
  for (const auto& wr : results) {
    EXPECT_EQ(wr.result().outcome(), v1::TASK_OUTCOME_CANCELLED);
  }
}

TEST_F(WorkServiceTest, OnlyMembersOpenWorkAndBlobsComeFromTheirListedAddress) {
  Stop();
  // As the node sets it: gossip lists "test-origin" at this very server.
  Start(0, [this](const std::string& origin) -> absl::StatusOr<std::string> {
    if (origin == "test-origin") return address_;
    return absl::NotFoundError("gossip lists no live member of that name");
  });
  const std::string content = "shipped input\n";
  const std::string sha = Sha256Hex(content);
  blobs_.Add(sha, content);
  // The stream names, for blobs, a port where nothing listens: the worker
  // fetches from the listed address instead, so the task succeeds.
  TestOrigin origin(channel_, "127.0.0.1:1", 1);
  ASSERT_EQ(origin.Take(1), 1);
  v1::Task task = Exec(0, {"cat", "in.txt"});
  auto* input = task.mutable_exec()->add_inputs();
  input->set_path("in.txt");
  input->set_blob_sha256(sha);
  ASSERT_TRUE(origin.SendTasks("job", {task}));
  std::vector<v1::WorkResult> results = origin.WaitResults(1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].result().outcome(), v1::TASK_OUTCOME_SUCCEEDED)
      << results[0].result().reason();
  EXPECT_EQ(results[0].result().stdout(), content);

  // An origin gossip does not list may not open work at all.
  TestOrigin stranger(channel_, address_, 1, false, "stranger");
  const grpc::Status refused = stranger.WaitFinish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("origin 'stranger' is not a member"));
}

TEST_F(WorkServiceTest, InputBlobsFetchedFromTheOriginVerifiedAndCached) {
  const std::string content(5500, 'z');  // Six chunks of 1000 bytes.
  const std::string sha = Sha256Hex(content);
  blobs_.Add(sha, content);
  auto origin = Origin(2);
  ASSERT_EQ(origin->Take(2), 2);
  v1::Task k = Kernel(0, "sha256", "");
  k.mutable_kernel()->set_input_blob_sha256(sha);
  v1::Task e = Exec(1, {"wc", "-c", "data/in.bin"});
  auto* in = e.mutable_exec()->add_inputs();
  in->set_path("data/in.bin");
  in->set_blob_sha256(sha);
  ASSERT_TRUE(origin->SendTasks("job", {k, e}));
  auto results = origin->WaitResults(2);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& wr : results) {
    ASSERT_EQ(wr.result().outcome(), v1::TASK_OUTCOME_SUCCEEDED)
        << wr.result().reason();
    if (wr.result().index() == 0) {
      EXPECT_EQ(wr.result().output(), sha);
    } else {
      EXPECT_EQ(wr.result().stdout(), "5500 data/in.bin\n");
    }
  }
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/data/blobs/" + sha));

  // A blob whose content does not match its name is refused; so is one the
  // origin does not have.
  const std::string wrong = Sha256Hex("what it should be");
  blobs_.Add(wrong, "something else");
  ASSERT_EQ(origin->Take(2), 2);
  v1::Task bad = Kernel(2, "sha256", "");
  bad.mutable_kernel()->set_input_blob_sha256(wrong);
  v1::Task missing = Kernel(3, "sha256", "");
  missing.mutable_kernel()->set_input_blob_sha256(Sha256Hex("nobody has it"));
  ASSERT_TRUE(origin->SendTasks("job", {bad, missing}));
  results = origin->WaitResults(4);
  ASSERT_EQ(results.size(), 4u);
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(results[i].result().outcome(), v1::TASK_OUTCOME_REJECTED);
    EXPECT_THAT(results[i].result().reason(),
                HasSubstr(results[i].result().index() == 2 ? "hashes to"
                                                           : "no such blob"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/data/blobs/" + wrong));
}

// Prefetch credits and batched results: many tiny tasks in flight, still
// never more running than cores, every result delivered once.
TEST_F(WorkServiceTest, PrefetchAndBatchesKeepRunningWithinCores) {
  Stop();
  Start(/*prefetch_per_core=*/8);
  worker_->ResetPeak();
  TestOrigin origin(channel_, address_, /*wanted=*/18, /*batches=*/true);
  constexpr int kTasks = 3000;
  int sent = 0;
  while (sent < kTasks) {
    const int n = std::min(origin.TakeCredits(kTasks), kTasks - sent);
    ASSERT_GT(n, 0);
    EXPECT_LE(n, 18);
    std::vector<v1::Task> tasks;
    for (int i = 0; i < n; ++i, ++sent) {
      tasks.push_back(Kernel(static_cast<uint64_t>(sent), "noop", ""));
    }
    origin.SendTasks("job", tasks);
  }
  auto results = origin.WaitResults(kTasks);
  ASSERT_EQ(results.size(), static_cast<size_t>(kTasks));
  std::set<uint64_t> seen;
  for (const auto& wr : results) {
    EXPECT_EQ(wr.result().outcome(), v1::TASK_OUTCOME_SUCCEEDED);
    seen.insert(wr.result().index());
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kTasks));
  EXPECT_LE(worker_->stats().peak_running, 2);
  EXPECT_GT(origin.batches(), 0);
  EXPECT_TRUE(origin.HalfCloseAndFinish().ok());
}

}  // namespace
}  // namespace peergrid::worker
