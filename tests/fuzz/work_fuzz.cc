// A work stream from an origin, as the worker's session takes it: OpenWork,
// then any sequence of Bundle, CancelWork and Demand messages. The worker
// runs kernels only (no processes are spawned by the fuzzer) on one core;
// each input's session is closed at its end, which cancels what still runs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "proto/work.pb.h"
#include "tests/fuzz/fuzz_input.h"
#include "worker/options.h"
#include "worker/worker.h"

namespace {

class NullSink : public peergrid::worker::WorkSink {
 public:
  void OnCredits(const peergrid::v1::CreditGrant&) override {}
  void OnResult(peergrid::v1::WorkResult) override {}
};

peergrid::worker::Worker* MakeWorker() {
  char pattern[] = "/tmp/peergrid_work_fuzz.XXXXXX";
  peergrid::worker::WorkerOptions options;
  options.cores = 1;
  options.data_dir = mkdtemp(pattern);
  options.node_name = "fuzzed";
  options.accept_exec = false;
  auto worker = peergrid::worker::Worker::Create(options, nullptr);
  if (!worker.ok()) std::abort();
  return worker->release();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static peergrid::worker::Worker* worker = MakeWorker();
  peergrid::fuzz::FuzzInput input(data, size);
  peergrid::v1::OpenWork open;
  if (!open.ParseFromString(input.Piece())) return 0;
  NullSink sink;
  std::unique_ptr<peergrid::worker::WorkSession> session =
      worker->OpenSession(open, sink, nullptr);
  while (!input.empty()) {
    peergrid::v1::WorkFromOrigin message;
    if (!message.ParseFromString(input.Piece())) continue;
    switch (message.message_case()) {
      case peergrid::v1::WorkFromOrigin::kBundle:
        session->Submit(std::move(*message.mutable_bundle()));
        break;
      case peergrid::v1::WorkFromOrigin::kCancel:
        session->Cancel(message.cancel());
        break;
      case peergrid::v1::WorkFromOrigin::kDemand:
        session->SetDemand(message.demand().slots_wanted());
        break;
      default:
        break;
    }
  }
  session->Close();
  return 0;
}
