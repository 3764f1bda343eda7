// Gossip membership with real processes on loopback, side by side with
// HashiCorp Serf in the same run: N `peergrid node` processes (or N
// `serf agent`s) on 127.0.0.2, 127.0.0.3, ..., one system at a time.
//
// For each N and run:
//  1. converge: time from spawning the last process until every process
//     lists all N alive, and the (observer, member) pairs seen dead
//     meanwhile (nobody has died yet: each is a false death);
//  2. change to all: a change of one member's advertisement (tag for Serf),
//     from when its own node shows it until every other process shows it,
//     as polled, and for peergrid also by the nodes' own clocks: from the
//     advertisement's publication until the last node took it in (the
//     stamps of `Jobs.ClusterStatus`, exact where the polls see 0.1-0.2 s).
//     peergrid: a one-task job (a 60 s `sleep` kernel) is submitted to one
//     node; whichever node runs it advertises tasks_running 1 (there is no
//     other way to change a running node's advertisement from outside).
//     Serf: the RPC `tags` command on one agent. peergrid then makes the
//     change once more with nothing polling for 2 s (the polls load the 2
//     cores), reads the stamps, and prints the CPU all processes spent in
//     those 2 s;
//  3. idle: resident memory (VmRSS) and CPU (utime + stime from
//     /proc/PID/stat) of every process over --idle_seconds without any
//     polling, reported per process (mean CPU, median RSS);
//  4. CPU contention: one process and --hogs busy loops pinned to core 0
//     for --load_seconds; every process is polled every 250 ms and any
//     member seen dead/failed counts as a false positive (observer, member);
//  5. kill -9 of one process: time until the first and until all the
//     others list it dead (Serf: failed).
// Every process is stopped by its own PID. Medians over --runs runs.
//
//   build/bench/gossip/gossip_process_bench --sizes=5,16,32,64 --runs=3
//   build/bench/gossip/gossip_process_bench --systems=peergrid --sizes=16
//       --node_flags=--gossip-probe-interval-ms=1000,--gossip-probe-timeout-ms=500
//       (one command, for another tuning)
#include <arpa/inet.h>
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/jobs.grpc.pb.h"
#include "tests/testing/node_process.h"
#include "tests/testing/subprocess.h"

ABSL_FLAG(std::string, sizes, "5,16,32,64", "Numbers of processes.");
ABSL_FLAG(int, runs, 3, "Runs per size and system; medians are reported.");
ABSL_FLAG(std::string, systems, "peergrid,serf", "Which systems to run.");
ABSL_FLAG(std::string, serf, "/usr/bin/serf", "The serf binary.");
ABSL_FLAG(int, idle_seconds, 10, "Idle window for CPU and memory.");
ABSL_FLAG(int, load_seconds, 10, "CPU contention window.");
ABSL_FLAG(int, hogs, 3, "Busy loops pinned with the contended process.");
ABSL_FLAG(int, timeout_seconds, 60, "Bound on each wait.");
ABSL_FLAG(std::vector<std::string>, node_flags, {},
          "More flags for every `peergrid node`, comma-separated, to compare "
          "tunings: --node_flags=--gossip-probe-interval-ms=1000,"
          "--gossip-probe-timeout-ms=500");
ABSL_FLAG(int, contended_nice, 0,
          "Nice value given to every thread of the contended process (0: as "
          "the busy loops; 19: starved harder).");

namespace peergrid::bench {
namespace {

using testing::NodeProcess;
using testing::Subprocess;

enum class State { kAlive, kSuspect, kDead, kLeft, kOther };

struct MemberView {
  State state = State::kOther;
  bool changed = false;  // Carries the advertisement change.
  // peergrid: the advertisement's publication by its owner, and when the
  // polled process took it in (unix ms, one clock: all run here).
  int64_t published_ms = 0;
  int64_t received_ms = 0;
};
// Member name -> view, as one process sees it. Empty when it did not answer.
using View = std::map<std::string, MemberView>;

std::string Host(int i) { return absl::StrCat("127.0.0.", i + 2); }

double Median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// --- Minimal MessagePack, enough for Serf's RPC -----------------------------

struct Msg {
  enum Type { kNil, kBool, kInt, kFloat, kStr, kArray, kMap } type = kNil;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<Msg> items;                    // Array.
  std::vector<std::pair<Msg, Msg>> entries;  // Map.
  const Msg* Get(const std::string& key) const {
    for (const auto& [k, v] : entries) {
      if (k.type == kStr && k.s == key) return &v;
    }
    return nullptr;
  }
};

// Decodes one value at `pos`; false when `buf` ends before it does.
bool Decode(const std::string& buf, size_t& pos, Msg& out, int depth = 0) {
  if (depth > 32 || pos >= buf.size()) return false;
  auto u = [&](int n, uint64_t& v) {
    if (pos + static_cast<size_t>(n) > buf.size()) return false;
    v = 0;
    for (int k = 0; k < n; ++k) {
      v = (v << 8) | static_cast<uint8_t>(buf[pos++]);
    }
    return true;
  };
  auto str = [&](uint64_t n) {
    if (pos + n > buf.size()) return false;
    out.type = Msg::kStr;
    out.s = buf.substr(pos, n);
    pos += n;
    return true;
  };
  auto array = [&](uint64_t n) {
    out.type = Msg::kArray;
    out.items.resize(n);
    for (auto& item : out.items) {
      if (!Decode(buf, pos, item, depth + 1)) return false;
    }
    return true;
  };
  auto map = [&](uint64_t n) {
    out.type = Msg::kMap;
    out.entries.resize(n);
    for (auto& [k, v] : out.entries) {
      if (!Decode(buf, pos, k, depth + 1) || !Decode(buf, pos, v, depth + 1)) {
        return false;
      }
    }
    return true;
  };
  const uint8_t b = static_cast<uint8_t>(buf[pos++]);
  uint64_t v = 0;
  if (b <= 0x7f) {
    out.type = Msg::kInt;
    out.i = b;
    return true;
  }
  if (b >= 0xe0) {
    out.type = Msg::kInt;
    out.i = static_cast<int8_t>(b);
    return true;
  }
  if ((b & 0xe0) == 0xa0) return str(b & 0x1f);
  if ((b & 0xf0) == 0x90) return array(b & 0x0f);
  if ((b & 0xf0) == 0x80) return map(b & 0x0f);
  switch (b) {
    case 0xc0:
      out.type = Msg::kNil;
      return true;
    case 0xc2:
    case 0xc3:
      out.type = Msg::kBool;
      out.i = b & 1;
      return true;
    case 0xc4:
    case 0xd9:
      return u(1, v) && str(v);
    case 0xc5:
    case 0xda:
      return u(2, v) && str(v);
    case 0xc6:
    case 0xdb:
      return u(4, v) && str(v);
    case 0xca: {
      if (!u(4, v)) return false;
      uint32_t w = static_cast<uint32_t>(v);
      float fl;
      std::memcpy(&fl, &w, 4);
      out.type = Msg::kFloat;
      out.f = fl;
      return true;
    }
    case 0xcb: {
      if (!u(8, v)) return false;
      out.type = Msg::kFloat;
      std::memcpy(&out.f, &v, 8);
      return true;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
      if (!u(1 << (b - 0xcc), v)) return false;
      out.type = Msg::kInt;
      out.i = static_cast<int64_t>(v);
      return true;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
      const int n = 1 << (b - 0xd0);
      if (!u(n, v)) return false;
      out.type = Msg::kInt;
      out.i = n == 8 ? static_cast<int64_t>(v)
                     : static_cast<int64_t>(v << (64 - 8 * n)) >> (64 - 8 * n);
      return true;
    }
    case 0xdc:
      return u(2, v) && array(v);
    case 0xdd:
      return u(4, v) && array(v);
    case 0xde:
      return u(2, v) && map(v);
    case 0xdf:
      return u(4, v) && map(v);
    default:
      return false;  // Extensions: not used by Serf.
  }
}

// Encoders for what we send (old-spec strings, which Serf's codec reads).
void EncStr(std::string& out, const std::string& s) {
  if (s.size() < 32) {
    out.push_back(static_cast<char>(0xa0 | s.size()));
  } else {
    out.push_back(static_cast<char>(0xda));
    out.push_back(static_cast<char>(s.size() >> 8));
    out.push_back(static_cast<char>(s.size() & 0xff));
  }
  out += s;
}
void EncMapHeader(std::string& out, size_t n) {
  out.push_back(static_cast<char>(0x80 | n));
}
void EncInt(std::string& out, int64_t v) {  // 0 <= v < 2^16.
  if (v < 128) {
    out.push_back(static_cast<char>(v));
  } else {
    out.push_back(static_cast<char>(0xcd));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v & 0xff));
  }
}

// One RPC connection to a Serf agent.
class SerfClient {
 public:
  ~SerfClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool Connect(const std::string& host, int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{2, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd_);
      fd_ = -1;
      return false;
    }
    std::string body;
    EncMapHeader(body, 1);
    EncStr(body, "Version");
    EncInt(body, 1);
    return Call("handshake", body, nullptr);
  }
  // Sends a command; reads the header and, if `body` is set, one body.
  bool Call(const std::string& command, const std::string& request, Msg* body) {
    std::string out;
    EncMapHeader(out, 2);
    EncStr(out, "Command");
    EncStr(out, command);
    EncStr(out, "Seq");
    EncInt(out, seq_++ & 0x7fff);
    out += request;
    if (send(fd_, out.data(), out.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(out.size())) {
      return false;
    }
    Msg header;
    if (!Read(header)) return false;
    const Msg* error = header.Get("Error");
    if (error != nullptr && !error->s.empty()) {
      std::cerr << "serf " << command << ": " << error->s << "\n";
      return false;
    }
    return body == nullptr || Read(*body);
  }

 private:
  bool Read(Msg& msg) {
    while (true) {
      size_t pos = 0;
      Msg value;
      if (!buf_.empty() && Decode(buf_, pos, value)) {
        buf_.erase(0, pos);
        msg = std::move(value);
        return true;
      }
      char chunk[65536];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  int fd_ = -1;
  int seq_ = 0;
  std::string buf_;
};

// --- The two systems behind one interface -----------------------------------

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual bool StartAll(int n, absl::Time* last_spawn) = 0;
  virtual View Poll(int i) = 0;
  // Triggers the advertisement change; false on failure.
  virtual bool Change() = 0;
  virtual void AfterChange() {}
  virtual pid_t Pid(int i) = 0;
  virtual void Kill(int i) = 0;  // SIGKILL and reap.
  virtual void StopAll() = 0;
  virtual std::string Name(int i) = 0;
};

class PeergridCluster : public Cluster {
 public:
  bool StartAll(int n, absl::Time* last_spawn) override {
    for (int i = 0; i < n; ++i) {
      std::vector<std::string> flags = {absl::StrCat("--name=", Name(i)),
                                        "--cores=1",
                                        "--metrics=", "--log-level=warning"};
      if (i > 0) flags.push_back("--join=" + nodes_[0]->grpc_address());
      for (const std::string& flag : absl::GetFlag(FLAGS_node_flags)) {
        flags.push_back(flag);
      }
      if (i == n - 1) *last_spawn = absl::Now();
      auto node = NodeProcess::Start(flags, Host(i), absl::Seconds(20));
      if (!node.ok()) {
        std::cerr << node.status() << "\n";
        return false;
      }
      nodes_.push_back(std::move(*node));
      stubs_.push_back(v1::Jobs::NewStub(grpc::CreateChannel(
          nodes_.back()->grpc_address(), grpc::InsecureChannelCredentials())));
    }
    return true;
  }
  View Poll(int i) override {
    View view;
    if (nodes_[static_cast<size_t>(i)] == nullptr) return view;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(2));
    v1::ClusterStatusResponse status;
    if (!stubs_[static_cast<size_t>(i)]
             ->ClusterStatus(&context, {}, &status)
             .ok()) {
      return view;
    }
    for (const v1::MemberStatus& m : status.members()) {
      MemberView& v = view[m.advertisement().name()];
      switch (m.state()) {
        case v1::MEMBER_STATE_ALIVE:
          v.state = State::kAlive;
          break;
        case v1::MEMBER_STATE_SUSPECT:
          v.state = State::kSuspect;
          break;
        case v1::MEMBER_STATE_DEAD:
          v.state = State::kDead;
          break;
        case v1::MEMBER_STATE_LEFT:
          v.state = State::kLeft;
          break;
        default:
          break;
      }
      v.changed = m.advertisement().tasks_running() > 0;
      v.published_ms = m.advertisement().published_unix_ms();
      v.received_ms = m.advertisement_received_unix_ms();
    }
    return view;
  }
  bool Change() override {
    v1::SubmitRequest request;
    request.mutable_job()->mutable_defaults()->set_timeout_ms(120000);
    v1::KernelSpec* kernel =
        request.mutable_job()->add_tasks()->mutable_kernel();
    kernel->set_name("sleep");
    kernel->set_argument("60000");
    v1::SubmitResponse response;
    grpc::ClientContext context;
    grpc::Status status = stubs_[0]->Submit(&context, request, &response);
    if (!status.ok()) {
      std::cerr << "submit: " << status.error_message() << "\n";
      return false;
    }
    job_ = response.job_id();
    return true;
  }
  void AfterChange() override {
    grpc::ClientContext context;
    v1::CancelRequest request;
    request.set_job_id(job_);
    v1::CancelResponse response;
    stubs_[0]->Cancel(&context, request, &response).ok();
  }
  pid_t Pid(int i) override {
    return nodes_[static_cast<size_t>(i)]->process().pid();
  }
  void Kill(int i) override {
    nodes_[static_cast<size_t>(i)]->process().Signal(SIGKILL);
    nodes_[static_cast<size_t>(i)]->process().Wait(absl::Seconds(5)).ok();
  }
  void StopAll() override {
    for (auto& node : nodes_) {
      if (node != nullptr) node->process().Signal(SIGTERM);
    }
    for (auto& node : nodes_) {
      if (node != nullptr && !node->process().Wait(absl::Seconds(5)).ok()) {
        node->process().Signal(SIGKILL);
        node->process().Wait(absl::Seconds(5)).ok();
      }
    }
    nodes_.clear();
    stubs_.clear();
  }
  std::string Name(int i) override { return absl::StrCat("p", i); }

 private:
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::unique_ptr<v1::Jobs::Stub>> stubs_;
  std::string job_;
};

class SerfCluster : public Cluster {
 public:
  bool StartAll(int n, absl::Time* last_spawn) override {
    const std::string serf = absl::GetFlag(FLAGS_serf);
    for (int i = 0; i < n; ++i) {
      std::string command = absl::StrCat(
          "exec ", serf, " agent -node=", Name(i), " -bind=", Host(i),
          ":7946 -rpc-addr=", Host(i), ":7373 -log-level=warn");
      // -retry-join: a plain -join that times out on a loaded machine makes
      // the agent exit.
      if (i > 0) {
        absl::StrAppend(&command, " -retry-join=", Host(0),
                        ":7946 -retry-interval=1s");
      }
      absl::StrAppend(&command, " >/dev/null 2>&1");
      if (i == n - 1) *last_spawn = absl::Now();
      auto agent = Subprocess::Start({"/bin/sh", "-c", command});
      if (!agent.ok()) {
        std::cerr << agent.status() << "\n";
        return false;
      }
      agents_.push_back(std::move(*agent));
      clients_.push_back(nullptr);
      // The first agent must be up before the others join through it.
      if (i == 0) {
        const absl::Time deadline = absl::Now() + absl::Seconds(10);
        while (Client(0) == nullptr && absl::Now() < deadline) {
          absl::SleepFor(absl::Milliseconds(20));
        }
        if (Client(0) == nullptr) return false;
      }
    }
    return true;
  }
  View Poll(int i) override {
    View view;
    SerfClient* client = Client(i);
    if (client == nullptr) return view;
    Msg body;
    if (!client->Call("members", "", &body)) {
      clients_[static_cast<size_t>(i)].reset();
      return view;
    }
    const Msg* members = body.Get("Members");
    if (members == nullptr) return view;
    for (const Msg& m : members->items) {
      const Msg* name = m.Get("Name");
      const Msg* status = m.Get("Status");
      const Msg* tags = m.Get("Tags");
      if (name == nullptr || status == nullptr) continue;
      MemberView& v = view[name->s];
      if (status->s == "alive") v.state = State::kAlive;
      if (status->s == "failed") v.state = State::kDead;
      if (status->s == "left" || status->s == "leaving") v.state = State::kLeft;
      v.changed = tags != nullptr && tags->Get("bench") != nullptr;
    }
    return view;
  }
  bool Change() override {
    SerfClient* client = Client(0);
    if (client == nullptr) return false;
    std::string body;
    EncMapHeader(body, 2);
    EncStr(body, "Tags");
    EncMapHeader(body, 1);
    EncStr(body, "bench");
    EncStr(body, "1");
    EncStr(body, "DeleteTags");
    body.push_back(static_cast<char>(0x90));  // Empty array.
    return client->Call("tags", body, nullptr);
  }
  pid_t Pid(int i) override { return agents_[static_cast<size_t>(i)]->pid(); }
  void Kill(int i) override {
    clients_[static_cast<size_t>(i)].reset();
    agents_[static_cast<size_t>(i)]->Signal(SIGKILL);
    agents_[static_cast<size_t>(i)]->Wait(absl::Seconds(5)).ok();
    dead_.insert(i);
  }
  void StopAll() override {
    clients_.clear();
    for (auto& agent : agents_) agent->Signal(SIGKILL);
    for (auto& agent : agents_) agent->Wait(absl::Seconds(5)).ok();
    agents_.clear();
    dead_.clear();
  }
  std::string Name(int i) override { return absl::StrCat("s", i); }

 private:
  SerfClient* Client(int i) {
    if (dead_.count(i) > 0) return nullptr;
    auto& client = clients_[static_cast<size_t>(i)];
    if (client == nullptr) {
      auto fresh = std::make_unique<SerfClient>();
      if (!fresh->Connect(Host(i), 7373)) return nullptr;
      client = std::move(fresh);
    }
    return client.get();
  }

  std::vector<std::unique_ptr<Subprocess>> agents_;
  std::vector<std::unique_ptr<SerfClient>> clients_;
  std::set<int> dead_;
};

// --- Measurements ------------------------------------------------------------

// utime + stime in seconds, and VmRSS in MB.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(text.substr(paren + 2), ' ');
  // Fields after "(comm) ": state is index 0, utime 11, stime 12.
  double utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) ||
      !absl::SimpleAtod(fields[12], &stime)) {
    return 0;
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A field of /proc/PID/status in kB ("VmRSS", "RssAnon"), as MB.
double StatusMb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      double kb = 0;
      std::vector<std::string> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kb)) {
        return kb / 1000.0;
      }
    }
  }
  return 0;
}

// Linux nice values are per thread: set it on every thread of `pid`.
void ReniceAllThreads(pid_t pid, int nice) {
  DIR* dir = opendir(absl::StrCat("/proc/", pid, "/task").c_str());
  if (dir == nullptr) return;
  while (dirent* entry = readdir(dir)) {
    int tid = 0;
    if (absl::SimpleAtoi(entry->d_name, &tid)) {
      setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice);
    }
  }
  closedir(dir);
}

struct RunResult {
  double converge = -1, change = -1, change_from_trigger = -1, dead_first = -1,
         dead_all = -1;
  // peergrid: from publication until the last process took it in, by the
  // processes' own stamps; while polled as above, and with no polls.
  double change_stamped = -1, change_stamped_quiet = -1;
  double rss_mb = -1, anon_mb = -1, idle_cpu_pct = -1;
  int false_positives = 0;
  // (observer, member) pairs seen dead while the processes were starting.
  int start_false_deaths = 0;
};

// The member of `view` that carries the advertisement change, with its
// name; nullptr when none does.
const MemberView* ChangedMember(const View& view, std::string* name) {
  for (const auto& [member_name, m] : view) {
    if (m.changed) {
      *name = member_name;
      return &m;
    }
  }
  return nullptr;
}

// peergrid: from the changed advertisement's publication until the last
// process took it in, by the processes' stamps, given the member as each
// process first showed it; -1 without stamps (Serf). A drift refresh may
// have replaced the change by a poll's time: that only makes a stamp
// later, never earlier.
double StampedSpread(const std::map<int, MemberView>& seen) {
  int64_t published = INT64_MAX, received = 0;
  for (const auto& [i, m] : seen) {
    if (m.published_ms > 0) published = std::min(published, m.published_ms);
    received = std::max(received, m.received_ms);
  }
  if (published == INT64_MAX || received == 0) return -1;
  std::vector<int64_t> delays;
  for (const auto& [i, m] : seen) delays.push_back(m.received_ms - published);
  std::sort(delays.begin(), delays.end());
  std::cerr << absl::StrFormat(
      "  stamped: half the processes had it after %d ms, 90%% after %d ms, "
      "all after %d ms\n",
      delays[delays.size() / 2], delays[delays.size() * 9 / 10], delays.back());
  return static_cast<double>(received - published) / 1000.0;
}

// Polls the processes in `pending` until `done(view)` holds for each; the
// time each first did is stored. Returns false on timeout.
bool WaitAll(Cluster& c, std::set<int> pending,
             const std::function<bool(int, const View&)>& done,
             std::map<int, absl::Time>* when) {
  const absl::Time deadline =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  while (!pending.empty()) {
    if (absl::Now() > deadline) {
      // Say what the laggards see, to tell why.
      int shown = 0;
      for (int i : pending) {
        if (shown++ == 3) break;
        std::map<State, int> counts;
        for (const auto& [name, m] : c.Poll(i)) ++counts[m.state];
        std::cerr << "  " << c.Name(i) << " sees alive "
                  << counts[State::kAlive] << " suspect "
                  << counts[State::kSuspect] << " dead " << counts[State::kDead]
                  << " left " << counts[State::kLeft] << " (" << pending.size()
                  << " pending)\n";
      }
      return false;
    }
    for (auto it = pending.begin(); it != pending.end();) {
      const View view = c.Poll(*it);
      if (!view.empty() && done(*it, view)) {
        (*when)[*it] = absl::Now();
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

bool Run(Cluster& c, int n, RunResult& r) {
  std::set<int> all;
  for (int i = 0; i < n; ++i) all.insert(i);
  std::map<int, absl::Time> when;

  // 1. Convergence.
  absl::Time last_spawn;
  if (!c.StartAll(n, &last_spawn)) return false;
  // Nobody has died yet: any member seen dead now was wrongly declared so.
  std::set<std::pair<int, std::string>> start_deaths;
  auto all_alive = [&](int i, const View& v) {
    int alive = 0;
    for (const auto& [name, m] : v) {
      alive += m.state == State::kAlive;
      if (m.state == State::kDead) start_deaths.insert({i, name});
    }
    return alive == n;
  };
  const bool converged = WaitAll(c, all, all_alive, &when);
  r.start_false_deaths = static_cast<int>(start_deaths.size());
  if (!converged) {
    std::cerr << "no convergence\n";
    return false;
  }
  absl::Time latest = last_spawn;
  for (const auto& [i, t] : when) latest = std::max(latest, t);
  r.converge = absl::ToDoubleSeconds(latest - last_spawn);

  // 2. Advertisement (tag) change: from the first process that shows it
  // (its own node) until all do.
  when.clear();
  const absl::Time triggered = absl::Now();
  if (!c.Change()) return false;
  // The changed member as each other process first showed it (a node's own
  // line is read live, ahead of its publication).
  std::map<int, MemberView> change_seen;
  auto sees_change = [&](int i, const View& v) {
    std::string name;
    const MemberView* changed = ChangedMember(v, &name);
    if (changed != nullptr && name != c.Name(i)) {
      change_seen.emplace(i, *changed);
    }
    return changed != nullptr;
  };
  if (!WaitAll(c, all, sees_change, &when)) {
    std::cerr << "the change did not reach all\n";
    return false;
  }
  r.change_stamped = StampedSpread(change_seen);
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  for (const auto& [i, t] : when) {
    first = std::min(first, t);
    last = std::max(last, t);
  }
  r.change = absl::ToDoubleSeconds(last - first);
  r.change_from_trigger = absl::ToDoubleSeconds(last - triggered);
  c.AfterChange();
  when.clear();
  // peergrid: wait for the cancelled task's end to settle everywhere.
  auto settled = [&](int, const View& v) {
    std::string name;
    return ChangedMember(v, &name) == nullptr;
  };
  if (dynamic_cast<PeergridCluster*>(&c) != nullptr) {
    WaitAll(c, all, settled, &when);
    // 2b. The same change again, with nothing polling while it spreads:
    // the polls above keep the 2 cores busy, and the nodes' stamps need
    // no polls. Trigger, wait, then read the stamps.
    double cpu_before = 0, cpu_after = 0;
    for (int i = 0; i < n; ++i) cpu_before += CpuSeconds(c.Pid(i));
    if (!c.Change()) return false;
    absl::SleepFor(absl::Seconds(2));
    for (int i = 0; i < n; ++i) cpu_after += CpuSeconds(c.Pid(i));
    std::cerr << absl::StrFormat(
        "  the grid's CPU in the 2 s after the change: %.2f s\n",
        cpu_after - cpu_before);
    change_seen.clear();
    when.clear();
    if (!WaitAll(c, all, sees_change, &when)) {
      std::cerr << "the second change did not reach all\n";
      return false;
    }
    r.change_stamped_quiet = StampedSpread(change_seen);
    c.AfterChange();
    when.clear();
    WaitAll(c, all, settled, &when);
  }

  // 3. Idle CPU and memory: nothing polls during the window.
  const int idle = absl::GetFlag(FLAGS_idle_seconds);
  std::vector<double> before;
  for (int i = 0; i < n; ++i) before.push_back(CpuSeconds(c.Pid(i)));
  absl::SleepFor(absl::Seconds(idle));  // The measured window itself.
  double cpu = 0;
  std::vector<double> rss, anon;
  for (int i = 0; i < n; ++i) {
    cpu += CpuSeconds(c.Pid(i)) - before[static_cast<size_t>(i)];
    rss.push_back(StatusMb(c.Pid(i), "VmRSS"));
    anon.push_back(StatusMb(c.Pid(i), "RssAnon"));
  }
  r.idle_cpu_pct = 100.0 * cpu / n / idle;
  r.rss_mb = Median(rss);
  r.anon_mb = Median(anon);

  // 4. CPU contention on process 1's core.
  const int target = 1 % n;
  testing::RunCommand(
      {"/usr/bin/taskset", "-a", "-c", "-p", "0", absl::StrCat(c.Pid(target))})
      .ok();
  const int nice = absl::GetFlag(FLAGS_contended_nice);
  if (nice != 0) ReniceAllThreads(c.Pid(target), nice);
  std::vector<std::unique_ptr<Subprocess>> hogs;
  for (int h = 0; h < absl::GetFlag(FLAGS_hogs); ++h) {
    auto hog = Subprocess::Start({"/usr/bin/taskset", "-c", "0", "/bin/sh",
                                  "-c", "while :; do :; done"});
    if (hog.ok()) hogs.push_back(std::move(*hog));
  }
  std::set<std::pair<int, std::string>> false_deaths;
  const absl::Time load_end =
      absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_load_seconds));
  while (absl::Now() < load_end) {
    for (int i = 0; i < n; ++i) {
      for (const auto& [name, m] : c.Poll(i)) {
        if (m.state == State::kDead) false_deaths.insert({i, name});
      }
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  for (auto& hog : hogs) hog->Signal(SIGKILL);
  for (auto& hog : hogs) hog->Wait(absl::Seconds(5)).ok();
  testing::RunCommand({"/usr/bin/taskset", "-a", "-c", "-p", "0-1",
                       absl::StrCat(c.Pid(target))})
      .ok();
  if (nice != 0) ReniceAllThreads(c.Pid(target), 0);
  r.false_positives = static_cast<int>(false_deaths.size());
  for (const auto& [i, name] : false_deaths) {
    std::cerr << "  false death: " << c.Name(i) << " saw " << name << "\n";
  }
  // Let any false death heal before the kill.
  when.clear();
  WaitAll(c, all, all_alive, &when);

  // 5. kill -9 of the last process.
  const int victim = n - 1;
  const std::string victim_name = c.Name(victim);
  std::set<int> others = all;
  others.erase(victim);
  when.clear();
  const absl::Time killed = absl::Now();
  c.Kill(victim);
  auto sees_dead = [&](int, const View& v) {
    auto it = v.find(victim_name);
    return it != v.end() && it->second.state == State::kDead;
  };
  if (!WaitAll(c, others, sees_dead, &when)) {
    std::cerr << "the death did not reach all\n";
    return false;
  }
  first = absl::InfiniteFuture();
  last = absl::InfinitePast();
  for (const auto& [i, t] : when) {
    first = std::min(first, t);
    last = std::max(last, t);
  }
  r.dead_first = absl::ToDoubleSeconds(first - killed);
  r.dead_all = absl::ToDoubleSeconds(last - killed);
  return true;
}

int Main() {
  std::vector<int> sizes;
  for (absl::string_view s :
       absl::StrSplit(absl::GetFlag(FLAGS_sizes), ',', absl::SkipEmpty())) {
    int n = 0;
    if (absl::SimpleAtoi(s, &n) && n >= 2 && n <= 250) sizes.push_back(n);
  }
  const std::vector<std::string> systems =
      absl::StrSplit(absl::GetFlag(FLAGS_systems), ',', absl::SkipEmpty());
  const int runs = absl::GetFlag(FLAGS_runs);
  struct Row {
    std::string system;
    int n;
    std::vector<RunResult> runs;
  };
  std::vector<Row> rows;
  for (int n : sizes) {
    for (const std::string& system : systems) {
      Row row{system, n, {}};
      for (int k = 0; k < runs; ++k) {
        std::unique_ptr<Cluster> cluster;
        if (system == "serf") {
          cluster = std::make_unique<SerfCluster>();
        } else {
          cluster = std::make_unique<PeergridCluster>();
        }
        RunResult r;
        const bool ok = Run(*cluster, n, r);
        cluster->StopAll();
        std::cerr << absl::StrFormat(
            "%s N=%d run %d: %s converge %.3f s (%d seen dead), change %.3f s "
            "(%.3f s from trigger, stamped %.3f s, %.3f s unpolled), dead "
            "first %.2f s all %.2f s, false %d, rss %.1f MB (anon %.1f), "
            "idle cpu %.3f%%\n",
            system, n, k, ok ? "ok" : "FAILED", r.converge,
            r.start_false_deaths, r.change, r.change_from_trigger,
            r.change_stamped, r.change_stamped_quiet, r.dead_first, r.dead_all,
            r.false_positives, r.rss_mb, r.anon_mb, r.idle_cpu_pct);
        if (ok) row.runs.push_back(r);
      }
      rows.push_back(std::move(row));
    }
  }
  std::cout
      << "| system | N | all see all alive | false deaths while starting "
         "| change to all, polled: from its own node "
         "| from the trigger | change to all, by the nodes' stamps: polled "
         "| unpolled | dead: first "
         "| dead: all | false deaths under CPU load | RSS (anonymous) "
         "| idle CPU per process | runs |\n"
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Row& row : rows) {
    auto med = [&](double RunResult::*field) {
      std::vector<double> v;
      for (const RunResult& r : row.runs) v.push_back(r.*field);
      return Median(v);
    };
    int false_total = 0, start_false_total = 0;
    for (const RunResult& r : row.runs) {
      false_total += r.false_positives;
      start_false_total += r.start_false_deaths;
    }
    auto seconds_or_na = [&](double RunResult::*field) {
      const double v = med(field);
      return v < 0 ? std::string("n/a") : absl::StrFormat("%.3f s", v);
    };
    std::cout << absl::StrFormat(
        "| %s | %d | %.2f s | %d | %.3f s | %.3f s | %s | %s | %.2f s | %.2f s "
        "| %d | %.1f MB (%.1f) | %.2f%% | %zu |\n",
        row.system, row.n, med(&RunResult::converge), start_false_total,
        med(&RunResult::change), med(&RunResult::change_from_trigger),
        seconds_or_na(&RunResult::change_stamped),
        seconds_or_na(&RunResult::change_stamped_quiet),
        med(&RunResult::dead_first), med(&RunResult::dead_all), false_total,
        med(&RunResult::rss_mb), med(&RunResult::anon_mb),
        med(&RunResult::idle_cpu_pct), row.runs.size());
  }
  return 0;
}

}  // namespace
}  // namespace peergrid::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return peergrid::bench::Main();
}
