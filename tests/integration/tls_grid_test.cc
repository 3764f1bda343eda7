// A grid of real `peergrid node` processes on 127.0.0.1-3 over mutual TLS,
// with certificates from the grid's own CA (node/tls/cluster_ca.h): the
// grid forms and runs a job, clients need the cluster's certificates, and a
// node of another CA never becomes a member.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "node/tls/cluster_ca.h"
#include "node/tls/credentials.h"
#include "proto/jobs.grpc.pb.h"
#include "proto/membership.grpc.pb.h"
#include "proto/work.grpc.pb.h"
#include "scheduler/job_validation.h"
#include "tests/testing/eventually.h"
#include "tests/testing/http.h"
#include "tests/testing/node_process.h"

namespace peergrid::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kNodes = 3;

class TlsGridTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/peergrid_tls_test.XXXXXX";
    dir_ = new std::string(mkdtemp(pattern));
    ASSERT_TRUE(tls::InitCa(Path("ca")).ok());
    ASSERT_TRUE(tls::InitCa(Path("other-ca")).ok());
    for (int i = 0; i < kNodes; ++i) {
      Issue("ca", absl::StrCat("node-", i), tls::Role::kNode);
    }
    Issue("ca", "alice", tls::Role::kSubmit);
    Issue("ca", "bob", tls::Role::kRead);
    Issue("ca", "carol", tls::Role::kSubmit);
    // Revoked by a test; no other test uses them.
    Issue("ca", "node-lost", tls::Role::kNode);
    Issue("ca", "mallory", tls::Role::kSubmit);
    Issue("other-ca", "intruder", tls::Role::kNode);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::string Path(const std::string& name) {
    return absl::StrCat(*dir_, "/", name);
  }
  static void Issue(const std::string& ca, const std::string& name,
                    tls::Role role) {
    tls::IssueOptions options;
    options.name = name;
    options.role = role;
    options.out_prefix = Path(name);
    ASSERT_TRUE(tls::IssueCertificate(Path(ca), options).ok()) << name;
  }
  // The --tls-* flags (or PEERGRID_TLS_* variables) for `holder`.
  static std::vector<std::string> TlsFlags(const std::string& holder,
                                           const std::string& ca = "ca") {
    return {"--tls-cert=" + Path(holder + ".crt"),
            "--tls-key=" + Path(holder + ".key"),
            "--tls-ca=" + Path(ca + "/ca.crt")};
  }
  static std::vector<std::string> TlsEnv(const std::string& holder) {
    return {"PEERGRID_TLS_CERT=" + Path(holder + ".crt"),
            "PEERGRID_TLS_KEY=" + Path(holder + ".key"),
            "PEERGRID_TLS_CA=" + Path("ca/ca.crt")};
  }

  void TearDown() override {
    if (!HasFailure()) return;
    StopAndPrintLogs(nodes_);
  }

  // Nodes holding `holders`' certificates, on 127.0.0.1, .2, ...; the
  // first with metrics on, every one with `extra` flags.
  void StartGrid(std::vector<std::string> holders = {"node-0", "node-1",
                                                     "node-2"},
                 const std::vector<std::string>& extra = {}) {
    for (size_t i = 0; i < holders.size(); ++i) {
      std::vector<std::string> flags = TlsFlags(holders[i]);
      flags.insert(flags.end(), extra.begin(), extra.end());
      flags.push_back("--cores=1");
      if (i > 0) flags.push_back("--metrics=");
      if (i > 0) flags.push_back("--join=" + nodes_[0]->grpc_address());
      absl::StatusOr<std::unique_ptr<NodeProcess>> node =
          NodeProcess::Start(flags, absl::StrCat("127.0.0.", i + 1));
      ASSERT_TRUE(node.ok()) << node.status();
      nodes_.push_back(std::move(*node));
    }
  }

  // peergrid_tls_handshake_failures_total{reason} on the first node.
  double Refused(const std::string& reason) {
    absl::StatusOr<HttpResponse> metrics =
        HttpGet(nodes_[0]->metrics_address(), "/metrics");
    if (!metrics.ok()) return -1;
    const std::string prefix = absl::StrCat(
        "peergrid_tls_handshake_failures_total{reason=\"", reason, "\"} ");
    for (absl::string_view line : absl::StrSplit(metrics->body, '\n')) {
      double value = 0;
      if (absl::ConsumePrefix(&line, prefix) && absl::SimpleAtod(line, &value)) {
        return value;
      }
    }
    return -1;
  }

  // A channel to `address` holding `holder`'s certificate.
  static std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                                const std::string& holder) {
    tls::TlsFiles files;
    files.cert = Path(holder + ".crt");
    files.key = Path(holder + ".key");
    files.ca = Path("ca/ca.crt");
    absl::StatusOr<std::shared_ptr<const tls::TlsCredentials>> credentials =
        tls::TlsCredentials::Create(files);
    EXPECT_TRUE(credentials.ok()) << credentials.status();
    return grpc::CreateChannel(address, (*credentials)->ChannelCredentials());
  }
  static std::unique_ptr<v1::Jobs::Stub> Stub(const std::string& address,
                                              const std::string& holder) {
    return v1::Jobs::NewStub(Channel(address, holder));
  }

  // Whether `stub`'s node holds exactly `names` alive within 15 s.
  static ::testing::AssertionResult AllAlive(
      v1::Jobs::Stub& stub, const std::vector<std::string>& names) {
    return Eventually(
        [&] {
          return ::testing::AssertionResult(Alive(stub) == names)
                 << Alive(stub).size() << " alive";
        },
        absl::Seconds(15));
  }

  // The members `stub`'s node holds alive, by name.
  static std::vector<std::string> Alive(v1::Jobs::Stub& stub) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
    v1::ClusterStatusResponse status;
    std::vector<std::string> alive;
    if (!stub.ClusterStatus(&context, {}, &status).ok()) return alive;
    for (const auto& member : status.members()) {
      if (member.state() == v1::MEMBER_STATE_ALIVE) {
        alive.push_back(member.advertisement().name());
      }
    }
    std::sort(alive.begin(), alive.end());
    return alive;
  }

  static CommandResult Peergrid(std::vector<std::string> args,
                                std::vector<std::string> env = {}) {
    args.insert(args.begin(), PeergridBinary());
    absl::StatusOr<CommandResult> result =
        RunCommand(args, absl::Seconds(30), env);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  static std::string* dir_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

std::string* TlsGridTest::dir_ = nullptr;

TEST_F(TlsGridTest, GridFormsAndRunsAJobWithNamesFromTheCertificates) {
  StartGrid();
  auto stub = Stub(nodes_[0]->grpc_address(), "alice");
  ASSERT_TRUE(AllAlive(*stub, {"node-0", "node-1", "node-2"}));
  // The names came from the certificates: no --name was given.
  EXPECT_EQ(nodes_[1]->start_line().name, "node-1");
  std::vector<std::string> args = {
      "run", "--node=" + nodes_[0]->grpc_address(), "-k", "echo", "x{}", ":::"};
  for (int i = 0; i < 12; ++i) args.push_back(absl::StrCat(i));
  CommandResult run = Peergrid(args, TlsEnv("alice"));
  EXPECT_EQ(run.status.exit_code, 0) << run.err;
  std::string expected;
  for (int i = 0; i < 12; ++i) absl::StrAppend(&expected, "x", i, "\n");
  EXPECT_EQ(run.out, expected);
}

TEST_F(TlsGridTest, PlainClientIsToldToPassTheCertificates) {
  StartGrid();
  const absl::Time start = absl::Now();
  CommandResult status =
      Peergrid({"status", "--node=" + nodes_[0]->grpc_address()});
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(status.status.exit_code, 1);
  EXPECT_THAT(status.err, HasSubstr("--tls-cert"));
}

TEST_F(TlsGridTest, TlsClientOfAPlainNodeIsToldWhy) {
  absl::StatusOr<std::unique_ptr<NodeProcess>> plain =
      NodeProcess::Start({"--metrics="});
  ASSERT_TRUE(plain.ok()) << plain.status();
  const absl::Time start = absl::Now();
  std::vector<std::string> args = {"status",
                                   "--node=" + (*plain)->grpc_address()};
  for (const std::string& flag : TlsFlags("alice")) args.push_back(flag);
  CommandResult status = Peergrid(args);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(status.status.exit_code, 1);
  EXPECT_THAT(status.err, HasSubstr("TLS handshake failed"));
}

TEST_F(TlsGridTest, RolesAreCheckedOnEveryCall) {
  StartGrid();
  const std::string address = nodes_[0]->grpc_address();
  auto reader = Stub(address, "bob");
  {
    grpc::ClientContext context;
    v1::ListJobsResponse jobs;
    EXPECT_TRUE(reader->ListJobs(&context, {}, &jobs).ok());
  }
  {
    grpc::ClientContext context;
    v1::SubmitRequest request;
    request.mutable_job()->add_tasks()->mutable_exec()->add_argv("true");
    v1::SubmitResponse response;
    const grpc::Status submit = reader->Submit(&context, request, &response);
    EXPECT_EQ(submit.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(submit.error_message(), HasSubstr("role 'read'"));
    EXPECT_THAT(submit.error_message(), HasSubstr("Jobs/Submit"));
  }
  {
    // A submitter is no member: it may not gossip.
    auto gossip = v1::Membership::NewStub(Channel(address, "alice"));
    grpc::ClientContext context;
    v1::PushPullRequest request;
    v1::PushPullResponse response;
    const grpc::Status push = gossip->PushPull(&context, request, &response);
    EXPECT_EQ(push.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(push.error_message(), HasSubstr("role 'submit'"));
  }
  CommandResult run =
      Peergrid({"run", "--node=" + address, "echo", ":::", "a"}, TlsEnv("bob"));
  EXPECT_NE(run.status.exit_code, 0);
  EXPECT_THAT(run.err, HasSubstr("role 'read'"));
}

TEST_F(TlsGridTest, AMemberMaySpeakOnlyForItself) {
  StartGrid({"node-0"});
  // node-1's certificate, but node-1 is no member of this grid yet: it may
  // still say who it is, and only that.
  auto gossip = v1::Membership::NewStub(
      Channel(nodes_[0]->grpc_address(), "node-1"));
  {
    grpc::ClientContext context;
    v1::Ping ping;
    ping.set_from("node-2");
    v1::Ack ack;
    const grpc::Status forged = gossip->SendPing(&context, ping, &ack);
    EXPECT_EQ(forged.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(forged.error_message(),
                HasSubstr("certificate 'node-1' may not speak for member "
                          "'node-2'"));
  }
  {
    grpc::ClientContext context;
    v1::Ping ping;
    ping.set_from("node-1");
    v1::Ack ack;
    EXPECT_TRUE(gossip->SendPing(&context, ping, &ack).ok());
    EXPECT_EQ(ack.from(), "node-0");
  }
}

// Opens a work stream to `address` as `holder`, naming `origin`, and
// returns how the worker ended it.
grpc::Status OpenWorkAs(const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& origin) {
  auto work = v1::Work::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  auto stream = work->Open(&context);
  v1::WorkFromOrigin open;
  open.mutable_open()->set_origin(origin);
  open.mutable_open()->set_slots_wanted(1);
  stream->Write(open);
  v1::WorkFromWorker reply;
  while (stream->Read(&reply)) {
  }
  return stream->Finish();
}

TEST_F(TlsGridTest, WorkStreamsOnlyFromTheMemberTheyName) {
  StartGrid({"node-0", "node-1"});
  auto stub = Stub(nodes_[0]->grpc_address(), "alice");
  ASSERT_TRUE(AllAlive(*stub, {"node-0", "node-1"}));
  // A member may not open work in another origin's name...
  const grpc::Status posing =
      OpenWorkAs(Channel(nodes_[0]->grpc_address(), "node-1"), "node-0");
  EXPECT_EQ(posing.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(posing.error_message(),
              HasSubstr("certificate 'node-1' may not open work for origin "
                        "'node-0'"));
  // ...and a node certificate of the CA is not enough: it must be a member.
  const grpc::Status stranger =
      OpenWorkAs(Channel(nodes_[0]->grpc_address(), "node-2"), "node-2");
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(stranger.error_message(),
              HasSubstr("origin 'node-2' is not a member"));
}

TEST_F(TlsGridTest, BlobsGoOnlyToWorkersHoldingTheirTasks) {
  StartGrid({"node-0", "node-1"});
  auto stub = Stub(nodes_[0]->grpc_address(), "alice");
  ASSERT_TRUE(AllAlive(*stub, {"node-0", "node-1"}));
  const std::string content = "shipped over TLS\n";
  const std::string sha = scheduler::Sha256Hex(content);
  v1::SubmitRequest submit;
  v1::Blob* blob = submit.mutable_job()->add_blobs();
  blob->set_sha256(sha);
  blob->set_data(content);
  // One core each: the tasks spread over both nodes, and node-1 fetches
  // the blob from node-0, as the holder of a task of the job.
  for (int i = 0; i < 8; ++i) {
    v1::ExecSpec* exec = submit.mutable_job()->add_tasks()->mutable_exec();
    for (const char* arg : {"sh", "-c", "cat in.txt; sleep 0.2"}) {
      exec->add_argv(arg);
    }
    v1::InputFile* input = exec->add_inputs();
    input->set_path("in.txt");
    input->set_blob_sha256(sha);
  }
  std::string job_id;
  {
    grpc::ClientContext context;
    v1::SubmitResponse response;
    ASSERT_TRUE(stub->Submit(&context, submit, &response).ok());
    job_id = response.job_id();
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  v1::WatchRequest watch;
  watch.set_job_id(job_id);
  auto reader = stub->Watch(&context, watch);
  std::set<std::string> ran_on;
  v1::WatchEvent event;
  int succeeded = 0;
  while (reader->Read(&event)) {
    if (!event.has_result()) continue;
    EXPECT_EQ(event.result().stdout(), content) << event.result().reason();
    succeeded += event.result().outcome() == v1::TASK_OUTCOME_SUCCEEDED;
    ran_on.insert(event.result().node());
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(succeeded, 8);
  EXPECT_EQ(ran_on.count("node-1"), 1u) << "every task ran on node-0";
  // The job is done: no worker holds a task of it, so none may fetch its
  // blob, not even one that did.
  for (const char* holder : {"node-1", "node-2"}) {
    auto work = v1::Work::NewStub(Channel(nodes_[0]->grpc_address(), holder));
    grpc::ClientContext fetch_context;
    v1::FetchBlobRequest fetch;
    fetch.set_sha256(sha);
    auto chunks = work->FetchBlob(&fetch_context, fetch);
    v1::BlobChunk chunk;
    EXPECT_FALSE(chunks->Read(&chunk)) << holder;
    const grpc::Status refused = chunks->Finish();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << holder;
    EXPECT_THAT(refused.error_message(), HasSubstr("holds no task"));
  }
}

TEST_F(TlsGridTest, AJobRecordsItsSubmitterWhoAloneMayCancelIt) {
  StartGrid({"node-0"});
  const std::string address = nodes_[0]->grpc_address();
  const std::string job_file = Path("sleep.json");
  std::ofstream(job_file) << R"({"tasks": [{"exec": {"argv": ["sleep", "30"]}}]})";
  CommandResult submit =
      Peergrid({"submit", "--node=" + address, job_file}, TlsEnv("alice"));
  ASSERT_EQ(submit.status.exit_code, 0) << submit.err;
  const std::string job_id(absl::StripAsciiWhitespace(submit.out));
  CommandResult jobs = Peergrid({"jobs", "--node=" + address}, TlsEnv("bob"));
  EXPECT_EQ(jobs.status.exit_code, 0) << jobs.err;
  EXPECT_THAT(jobs.out, HasSubstr("SUBMITTER"));
  EXPECT_THAT(jobs.out, ::testing::ContainsRegex(job_id + " +- +alice "));
  CommandResult by_carol =
      Peergrid({"cancel", "--node=" + address, job_id}, TlsEnv("carol"));
  EXPECT_NE(by_carol.status.exit_code, 0);
  EXPECT_THAT(by_carol.err,
              HasSubstr("role 'submit' of 'carol' may cancel only its own "
                        "jobs; job " + job_id + " was submitted by 'alice'"));
  CommandResult by_alice =
      Peergrid({"cancel", "--node=" + address, job_id}, TlsEnv("alice"));
  EXPECT_EQ(by_alice.status.exit_code, 0) << by_alice.err;
}

TEST_F(TlsGridTest, ExecTasksCannotReadTheNodesKey) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root: only a node running as root runs exec tasks "
                    "as another user (--exec-user)";
  }
  // The node's files in a directory anyone may enter, as /etc/peergrid/tls:
  // the certificate world-readable, the key 0600 (as `peergrid ca` writes
  // it), so that only the key's own mode keeps a task out.
  const std::string open_dir = Path("etc-tls");
  std::filesystem::create_directory(open_dir);
  std::filesystem::permissions(open_dir, std::filesystem::perms(0755));
  for (const char* ext : {".crt", ".key"}) {
    std::filesystem::copy_file(Path(std::string("node-0") + ext),
                               open_dir + "/node" + ext);
  }
  ASSERT_EQ(std::filesystem::status(open_dir + "/node.key").permissions(),
            std::filesystem::perms(0600));
  std::filesystem::permissions(*dir_, std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  std::vector<std::string> flags = {"--tls-cert=" + open_dir + "/node.crt",
                                    "--tls-key=" + open_dir + "/node.key",
                                    "--tls-ca=" + Path("ca/ca.crt"),
                                    "--metrics="};
  absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Start(flags);
  ASSERT_TRUE(node.ok()) << node.status();
  const std::string address = (*node)->grpc_address();
  CommandResult cert = Peergrid(
      {"run", "--node=" + address, "cat", ":::", open_dir + "/node.crt"},
      TlsEnv("alice"));
  EXPECT_EQ(cert.status.exit_code, 0) << cert.err;
  EXPECT_THAT(cert.out, HasSubstr("BEGIN CERTIFICATE"));
  CommandResult key = Peergrid(
      {"run", "--node=" + address, "cat", ":::", open_dir + "/node.key"},
      TlsEnv("alice"));
  EXPECT_NE(key.status.exit_code, 0);
  EXPECT_THAT(key.out, ::testing::Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(key.out + key.err, HasSubstr("Permission denied"));
}

// The serial of the certificate a node presents on `channel`, or "" if the
// call fails.
std::string ServedSerial(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Jobs::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::ListJobsResponse jobs;
  if (!stub->ListJobs(&context, {}, &jobs).ok()) return "";
  std::vector<grpc::string_ref> pem =
      context.auth_context()->FindPropertyValues(
          GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return "";
  absl::StatusOr<tls::CertificateInfo> info = tls::ParseCertificate(
      absl::string_view(pem.front().data(), pem.front().size()));
  return info.ok() ? info->serial_hex : "";
}

TEST_F(TlsGridTest, ARenewedCertificateIsServedWithoutARestart) {
  // Its own copy of node-0's pair, renewed in place below.
  Issue("ca", "node-renewed", tls::Role::kNode);
  std::vector<std::string> flags = TlsFlags("node-renewed");
  flags.push_back("--metrics=");
  flags.push_back("--cores=1");
  absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Start(flags);
  ASSERT_TRUE(node.ok()) << node.status();
  const std::string address = (*node)->grpc_address();
  const std::string before = tls::ReadCertificateFile(
                                 Path("node-renewed.crt"))->serial_hex;
  // Each check dials afresh: an open connection keeps the pair it began with.
  auto fresh_channel = [&] {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    tls::TlsFiles files{Path("alice.crt"), Path("alice.key"),
                        Path("ca/ca.crt"), ""};
    return grpc::CreateCustomChannel(
        address, (*tls::TlsCredentials::Create(files))->ChannelCredentials(),
        arguments);
  };
  ASSERT_EQ(ServedSerial(fresh_channel()), before);
  // A job runs across the renewal.
  CommandResult job;
  std::thread running([&] {
    job = Peergrid({"run", "--node=" + address, "-k", "sh", "-c",
                    "sleep 1; echo {}", ":::", "a", "b", "c"},
                   TlsEnv("alice"));
  });
  Issue("ca", "node-renewed", tls::Role::kNode);  // Same --out: replaced.
  const std::string after =
      tls::ReadCertificateFile(Path("node-renewed.crt"))->serial_hex;
  ASSERT_NE(after, before);
  // gRPC's file watcher looks every 10 s.
  EXPECT_TRUE(Eventually(
      [&] {
        const std::string served = ServedSerial(fresh_channel());
        return ::testing::AssertionResult(served == after)
               << "serves " << served;
      },
      absl::Seconds(30), absl::Milliseconds(500)));
  running.join();
  EXPECT_EQ(job.status.exit_code, 0) << job.err;
  EXPECT_EQ(job.out, "a\nb\nc\n");
}

TEST_F(TlsGridTest, NodeOfAnotherCaNeverBecomesAMember) {
  StartGrid();
  for (auto& node : nodes_) {
    auto stub = Stub(node->grpc_address(), "alice");
    ASSERT_TRUE(Eventually(
        [&] {
          return ::testing::AssertionResult(Alive(*stub).size() ==
                                            static_cast<size_t>(kNodes));
        },
        absl::Seconds(15)));
  }
  std::vector<std::string> flags = TlsFlags("intruder", "other-ca");
  flags.insert(flags.end(),
               {"--metrics=", "--join=" + nodes_[0]->grpc_address()});
  absl::StatusOr<std::unique_ptr<NodeProcess>> intruder =
      NodeProcess::Start(flags, "127.0.0.4");
  ASSERT_TRUE(intruder.ok()) << intruder.status();
  // It tries to join, and is refused at the handshake each time.
  ASSERT_TRUE(Eventually(
      [&] {
        return ::testing::AssertionResult(
            absl::StrContains((*intruder)->Log(), "found no seed answering"));
      },
      absl::Seconds(15)));
  for (auto& node : nodes_) {
    EXPECT_EQ(Alive(*Stub(node->grpc_address(), "alice")).size(),
              static_cast<size_t>(kNodes));
  }
  EXPECT_TRUE(Eventually(
      [&] { return ::testing::AssertionResult(Refused("unknown_ca") >= 1); },
      absl::Seconds(5)));
}

TEST_F(TlsGridTest, PeerWithoutACertificateIsRefusedAndCounted) {
  StartGrid({"node-0"});
  // TLS that trusts the grid's CA but presents no certificate of its own.
  grpc::SslCredentialsOptions options;
  std::ifstream ca(Path("ca/ca.crt"));
  options.pem_root_certs.assign(std::istreambuf_iterator<char>(ca), {});
  grpc::ChannelArguments arguments;
  arguments.SetSslTargetNameOverride("node-0");
  auto stub = v1::Jobs::NewStub(grpc::CreateCustomChannel(
      nodes_[0]->grpc_address(), grpc::SslCredentials(options), arguments));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::ListJobsResponse jobs;
  EXPECT_FALSE(stub->ListJobs(&context, {}, &jobs).ok());
  // The client may see the end of the handshake before the node has
  // counted it.
  EXPECT_TRUE(Eventually(
      [&] {
        return ::testing::AssertionResult(Refused("no_certificate") >= 1 &&
                                          absl::StrContains(
                                              nodes_[0]->Log(),
                                              "tls: refused peer"));
      },
      absl::Seconds(5)));
}

TEST_F(TlsGridTest, RevokedCertificatesAreRefusedOnceTheCrlChanges) {
  StartGrid({"node-0", "node-1", "node-lost"},
            {"--tls-crl=" + Path("ca/crl")});
  auto stub = Stub(nodes_[0]->grpc_address(), "alice");
  ASSERT_TRUE(AllAlive(*stub, {"node-0", "node-1", "node-lost"}));
  // Mallory's connection is open before her certificate is revoked.
  auto mallory = Stub(nodes_[0]->grpc_address(), "mallory");
  {
    grpc::ClientContext context;
    v1::ListJobsResponse jobs;
    ASSERT_TRUE(mallory->ListJobs(&context, {}, &jobs).ok());
  }
  ASSERT_TRUE(tls::RevokeCertificates(Path("ca"), "node-lost").ok());
  ASSERT_TRUE(tls::RevokeCertificates(Path("ca"), "mallory").ok());
  // No restart: the nodes see the new CRL, refuse node-lost's calls and
  // re-dial it, and it is dead to them.
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(AllAlive(*Stub(nodes_[i]->grpc_address(), "alice"),
                         {"node-0", "node-1"}));
  }
  grpc::ClientContext context;
  v1::ListJobsResponse jobs;
  const grpc::Status refused = mallory->ListJobs(&context, {}, &jobs);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.error_message(), HasSubstr("revoked"));
  EXPECT_GE(Refused("revoked"), 1);
  // The others keep working.
  CommandResult run = Peergrid(
      {"run", "--node=" + nodes_[1]->grpc_address(), "echo", ":::", "a", "b"},
      TlsEnv("alice"));
  EXPECT_EQ(run.status.exit_code, 0) << run.err;
}

TEST_F(TlsGridTest, NodeRefusesToStartWithAnotherNameOrACertificateNotANodes) {
  struct Case {
    std::string holder;  // Whose certificate the node is given.
    std::vector<std::string> extra;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"node-0", {"--name=someone-else"}, "is issued to 'node-0'"},
      {"alice", {}, "a node needs one issued with --role=node"},
      {"intruder", {}, "against --tls-ca"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"node", "--listen=127.0.0.1:0",
                                     "--metrics="};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    for (const std::string& flag : TlsFlags(c.holder)) args.push_back(flag);
    CommandResult node = Peergrid(args);
    EXPECT_NE(node.status.exit_code, 0) << c.holder;
    EXPECT_THAT(node.err, HasSubstr(c.error)) << c.holder;
  }
}

}  // namespace
}  // namespace peergrid::testing
