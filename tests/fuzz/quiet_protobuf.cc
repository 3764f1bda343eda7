// Linked into every fuzz target: protobuf logs each string field that is
// not UTF-8 as it refuses the message, which for a fuzzer is most inputs;
// the refusal itself is what the targets check, the lines only slow them.
#include <google/protobuf/stubs/logging.h>

namespace {

const bool kQuiet = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

}  // namespace
