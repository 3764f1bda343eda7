// Splitting a fuzzer's bytes into the pieces a target feeds its parser:
// each piece is a 2-byte little-endian length and that many bytes (cut
// short at the end), so that one input can hold a sequence of messages.
#ifndef PEERGRID_TESTS_FUZZ_FUZZ_INPUT_H_
#define PEERGRID_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace peergrid::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return size_ == 0; }
  uint8_t Byte() {
    if (size_ == 0) return 0;
    --size_;
    return *data_++;
  }
  std::string Piece() {
    size_t length = Byte();
    length |= static_cast<size_t>(Byte()) << 8;
    if (length > size_) length = size_;
    std::string piece(reinterpret_cast<const char*>(data_), length);
    data_ += length;
    size_ -= length;
    return piece;
  }
  std::string Rest() {
    std::string rest(reinterpret_cast<const char*>(data_), size_);
    data_ += size_;
    size_ = 0;
    return rest;
  }

 private:
  const uint8_t* data_;
  size_t size_;
};

}  // namespace peergrid::fuzz

#endif  // PEERGRID_TESTS_FUZZ_FUZZ_INPUT_H_
