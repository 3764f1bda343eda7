// Hostile input against one real `peergrid node` process: garbage on the
// port, an HTTP/1 request, oversized messages, 10 million tasks, huge
// names, invalid UTF-8, absurd numbers, paths out of the sandbox, a Watch
// beyond the end, an unknown job, a flood of connections. Each gets a clear
// status (or a closed connection), and after each the node still answers
// and still runs a job. The table of what each case got is printed, for
// the record (docs/security.md).
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "proto/jobs.grpc.pb.h"
#include "tests/testing/eventually.h"
#include "tests/testing/http.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

// What a case got: a gRPC status code's name and its message, or what the
// connection did.
struct Observed {
  std::string got;
  std::string detail;
};

Observed FromStatus(const grpc::Status& status) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  return {code >= 0 && code <= 16 ? kNames[code] : "?",
          status.error_message().substr(0, 120)};
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NodeProcess>> node =
        NodeProcess::Start({"--metrics=", "--cores=1"});
    ASSERT_TRUE(node.ok()) << node.status();
    node_ = std::move(*node);
    stub_ = v1::Jobs::NewStub(Channel());
  }

  std::shared_ptr<grpc::Channel> Channel() {
    grpc::ChannelArguments arguments;
    arguments.SetMaxSendMessageSize(-1);  // Let the node be the one to refuse.
    return grpc::CreateCustomChannel(
        node_->grpc_address(), grpc::InsecureChannelCredentials(), arguments);
  }

  static std::unique_ptr<grpc::ClientContext> Context(int seconds = 20) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(seconds));
    return context;
  }

  Observed Submit(const v1::Job& job) {
    v1::SubmitRequest request;
    *request.mutable_job() = job;
    v1::SubmitResponse response;
    return FromStatus(stub_->Submit(Context().get(), request, &response));
  }

  // Sends `bytes` as the serialized request of `method`, bypassing the
  // client's own serialization (which would refuse some of them).
  Observed RawCall(const std::string& method, const std::string& bytes) {
    grpc::GenericStub generic(Channel());
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    auto context = Context();
    generic.UnaryCall(context.get(), method, grpc::StubOptions(), &request,
                      &response, [&](grpc::Status s) {
                        status = std::move(s);
                        done.Notify();
                      });
    done.WaitForNotification();
    return FromStatus(status);
  }

  // The node answers and runs a one-task job, within a few seconds.
  ::testing::AssertionResult StillServes() {
    if (node_->process().Wait(absl::ZeroDuration()).ok()) {
      return ::testing::AssertionFailure() << "the node died:\n"
                                           << node_->Log();
    }
    v1::Job job;
    job.add_tasks()->mutable_kernel()->set_name("noop");
    v1::SubmitRequest request;
    *request.mutable_job() = job;
    v1::SubmitResponse response;
    grpc::Status submitted =
        stub_->Submit(Context(10).get(), request, &response);
    if (!submitted.ok()) {
      return ::testing::AssertionFailure()
             << "Submit: " << submitted.error_message();
    }
    v1::WatchRequest watch;
    watch.set_job_id(response.job_id());
    auto context = Context(10);
    auto reader = stub_->Watch(context.get(), watch);
    v1::WatchEvent event;
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    while (reader->Read(&event)) state = event.status().state();
    if (!reader->Finish().ok() || state != v1::JOB_STATE_DONE) {
      return ::testing::AssertionFailure() << "the job did not finish";
    }
    return ::testing::AssertionSuccess();
  }

  // One exec task running `argv`.
  static v1::Job ExecJob(std::vector<std::string> argv) {
    v1::Job job;
    v1::ExecSpec* exec = job.add_tasks()->mutable_exec();
    for (std::string& arg : argv) exec->add_argv(std::move(arg));
    return job;
  }

  std::unique_ptr<NodeProcess> node_;
  std::unique_ptr<v1::Jobs::Stub> stub_;
};

// One serialized Task field of a Job (field 3): a noop kernel.
std::string NoopTaskField() {
  v1::Task task;
  task.mutable_kernel()->set_name("noop");
  v1::Job one;
  *one.add_tasks() = task;
  return one.SerializeAsString();
}

TEST_F(HostileInputTest, EveryCaseGetsAClearAnswerAndTheNodeLivesOn) {
  struct Case {
    std::string name;
    std::function<Observed()> run;
    std::string expected;  // What `got` must be.
  };
  const std::string address = node_->grpc_address();
  std::vector<Case> cases = {
      {"garbage bytes on the port",
       [&] {
         std::string garbage(4096, '\0');
         for (size_t i = 0; i < garbage.size(); ++i) {
           garbage[i] = static_cast<char>((i * 131 + 7) % 251);
         }
         absl::StatusOr<std::string> reply = SendRaw(address, garbage);
         return Observed{
             reply.ok() ? "connection closed" : "error",
             absl::StrCat(reply.ok() ? reply->size() : 0, " bytes back")};
       },
       "connection closed"},
      {"an HTTP/1 request",
       [&] {
         absl::StatusOr<std::string> reply =
             SendRaw(address, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
         return Observed{
             reply.ok() ? "connection closed" : "error",
             absl::StrCat(reply.ok() ? reply->size() : 0, " bytes back")};
       },
       "connection closed"},
      {"a 100 MB message",
       [&] {
         v1::Job job;
         job.add_tasks()->mutable_kernel()->set_name("noop");
         v1::Blob* blob = job.add_blobs();
         blob->set_data(std::string(100 << 20, 'x'));
         blob->set_sha256(std::string(64, '0'));
         return Submit(job);
       },
       "RESOURCE_EXHAUSTED"},
      {"10 million tasks in one Submit",
       [&] {
         const std::string task = NoopTaskField();
         std::string job;
         job.reserve(task.size() * 10'000'000);
         for (int i = 0; i < 10'000'000; ++i) job += task;
         // Wrapped as SubmitRequest.job (field 1, length-delimited).
         std::string request = "\x0a";
         uint64_t length = job.size();
         while (length >= 0x80) {
           request += static_cast<char>((length & 0x7f) | 0x80);
           length >>= 7;
         }
         request += static_cast<char>(length);
         request += job;
         return RawCall("/peergrid.v1.Jobs/Submit", request);
       },
       "RESOURCE_EXHAUSTED"},
      {"a job name of 1 MB",
       [&] {
         v1::Job job = ExecJob({"true"});
         job.set_name(std::string(1 << 20, 'n'));
         return Submit(job);
       },
       "INVALID_ARGUMENT"},
      {"invalid UTF-8 in a string",
       [&] {
         v1::Job job = ExecJob({"true"});
         job.set_name("NAME");
         v1::SubmitRequest request;
         *request.mutable_job() = job;
         std::string bytes = request.SerializeAsString();
         absl::StrReplaceAll({{"NAME", "\xff\xfe\xfd\xfc"}}, &bytes);
         return RawCall("/peergrid.v1.Jobs/Submit", bytes);
       },
       // protobuf refuses to parse it; gRPC 1.51's callback server answers
       // a request that does not parse so, before any handler runs.
       "UNIMPLEMENTED"},
      {"the same, valid, as raw bytes (the control)",
       [&] {
         v1::SubmitRequest request;
         *request.mutable_job() = ExecJob({"true"});
         return RawCall("/peergrid.v1.Jobs/Submit",
                        request.SerializeAsString());
       },
       "OK"},
      {"a negative timeout",
       [&] {
         v1::Job job = ExecJob({"true"});
         job.mutable_tasks(0)->set_timeout_ms(-1);
         return Submit(job);
       },
       "INVALID_ARGUMENT"},
      {"4 billion cpus",
       [&] {
         v1::Job job = ExecJob({"true"});
         job.mutable_tasks(0)->set_cpus(4'000'000'000u);
         return Submit(job);
       },
       "INVALID_ARGUMENT"},
      {"a task index of 2^64-1",
       [&] {
         v1::Job job = ExecJob({"true"});
         job.mutable_tasks(0)->set_index(~uint64_t{0});
         return Submit(job);
       },
       "INVALID_ARGUMENT"},
      {"an output path ../../etc/passwd",
       [&] {
         v1::Job job = ExecJob({"true"});
         job.mutable_tasks(0)->mutable_exec()->add_output_files(
             "../../etc/passwd");
         return Submit(job);
       },
       "INVALID_ARGUMENT"},
      {"an output that is a symlink out of the sandbox",
       [&] {
         v1::Job job = ExecJob({"ln", "-s", "/etc/passwd", "out.txt"});
         job.mutable_tasks(0)->mutable_exec()->add_output_files("out.txt");
         v1::SubmitRequest request;
         *request.mutable_job() = job;
         v1::SubmitResponse response;
         grpc::Status submitted =
             stub_->Submit(Context().get(), request, &response);
         if (!submitted.ok()) return FromStatus(submitted);
         v1::WatchRequest watch;
         watch.set_job_id(response.job_id());
         auto context = Context();
         auto reader = stub_->Watch(context.get(), watch);
         v1::WatchEvent event;
         v1::TaskResult result;
         while (reader->Read(&event)) {
           if (event.has_result()) result = event.result();
         }
         reader->Finish();
         for (const v1::OutputFile& file : result.output_files()) {
           if (file.data().find("root:") != std::string::npos) {
             return Observed{"LEAKED /etc/passwd", ""};
           }
         }
         return Observed{
             absl::StrCat("task ", v1::TaskOutcome_Name(result.outcome())),
             result.reason().substr(0, 120)};
       },
       "task TASK_OUTCOME_FAILED"},
      {"a Watch from beyond the end",
       [&] {
         v1::SubmitRequest request;
         request.mutable_job()->add_tasks()->mutable_kernel()->set_name("noop");
         v1::SubmitResponse response;
         stub_->Submit(Context().get(), request, &response);
         v1::WatchRequest watch;
         watch.set_job_id(response.job_id());
         watch.set_from_result(1'000'000);
         auto context = Context();
         auto reader = stub_->Watch(context.get(), watch);
         v1::WatchEvent event;
         int results = 0;
         while (reader->Read(&event)) results += event.has_result();
         Observed observed = FromStatus(reader->Finish());
         observed.detail =
             absl::StrCat(results, " results, final state ",
                          v1::JobState_Name(event.status().state()));
         return observed;
       },
       "OK"},
      {"a cancel of an unknown job",
       [&] {
         v1::CancelRequest request;
         request.set_job_id("no-such-job");
         v1::CancelResponse response;
         return FromStatus(stub_->Cancel(Context().get(), request, &response));
       },
       "NOT_FOUND"},
      {"a flood of 300 connections",
       [&] {
         std::vector<std::thread> threads;
         std::atomic<int> answered{0};
         for (int i = 0; i < 300; ++i) {
           threads.emplace_back([&] {
             if (SendRaw(address, "PRI * HTTP/2.0\r\n", absl::Seconds(2))
                     .ok()) {
               ++answered;
             }
           });
         }
         for (std::thread& thread : threads) thread.join();
         return Observed{
             "connections handled",
             absl::StrCat(answered.load(), " of 300 closed cleanly")};
       },
       "connections handled"},
  };
  std::string table = "| hostile input | got | detail |\n|---|---|---|\n";
  for (const Case& c : cases) {
    const Observed observed = c.run();
    EXPECT_EQ(observed.got, c.expected) << c.name << ": " << observed.detail;
    EXPECT_TRUE(StillServes()) << "after " << c.name;
    absl::StrAppend(
        &table, "| ", c.name, " | ", observed.got, " | ",
        absl::StrReplaceAll(observed.detail, {{"|", "/"}, {"\n", " "}}),
        " |\n");
  }
  std::cout << table;
}

}  // namespace
}  // namespace peergrid::testing
