#include "wal/scanner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "wal/codec.h"

namespace sqsrelay::wal {
namespace {

constexpr uint64_t base = 100;  // file offset of the body; any value works

// A segment body built record by record, then damaged in place (leveldb log_test style).
class scanner_test : public ::testing::Test {
 protected:
  // Appends a record; returns the body offset of its header.
  size_t add(std::string_view payload, uint8_t type = 1) {
    size_t at = body_.size();
    std::string rec(record_header_size, '\0');
    rec[record_type_offset] = static_cast<char>(type);
    rec.append(payload);
    seal_record(rec);
    body_ += rec;
    return at;
  }

  scan_result scan() {
    seen_.clear();
    offsets_.clear();
    return scan_records(body_, base, [&](const scanned_record& r) {
      seen_.emplace_back(r.payload.data(), r.payload.size());
      offsets_.push_back(r.offset);
    });
  }

  std::string body_;
  std::vector<std::string> seen_;
  std::vector<uint64_t> offsets_;
};

TEST_F(scanner_test, empty_body_has_no_records) {
  scan_result r = scan();
  EXPECT_EQ(r.records, 0u);
  EXPECT_EQ(r.valid_end, base);
  EXPECT_EQ(r.tail_bytes, 0u);
}

TEST_F(scanner_test, intact_records_come_back_in_order_with_payload_offsets) {
  add("one");
  add("");
  add(std::string(1000, 'x'), 7);
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"one", "", std::string(1000, 'x')}));
  EXPECT_EQ(offsets_[0], base + record_header_size);
  EXPECT_EQ(offsets_[1], base + 2 * record_header_size + 3);
  EXPECT_EQ(r.valid_end, base + body_.size());
  EXPECT_EQ(r.corrupt_records, 0u);
}

TEST_F(scanner_test, truncated_trailing_record_is_tail) {
  add("first");
  add("second record");
  const std::string full = body_;
  const uint64_t first_end = record_header_size + 5;
  for (size_t keep = first_end; keep < full.size(); ++keep) {
    body_ = full.substr(0, keep);
    scan_result r = scan();
    EXPECT_EQ(seen_, std::vector<std::string>{"first"}) << keep;
    EXPECT_EQ(r.valid_end, base + first_end);
    EXPECT_EQ(r.tail_bytes, keep - first_end);
    EXPECT_EQ(r.corrupt_records, 0u);
  }
}

TEST_F(scanner_test, checksum_mismatch_in_the_middle_is_skipped_and_counted) {
  add("a");
  size_t bad = add("bbbbbbbb");
  add("c");
  body_[bad + record_header_size + 2] ^= 0x10;
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(r.corrupt_records, 1u);
  EXPECT_EQ(r.skipped_bytes, record_header_size + 8);
  EXPECT_EQ(r.tail_bytes, 0u);
}

TEST_F(scanner_test, bad_length_in_the_middle_resyncs_on_the_next_record) {
  add("a");
  size_t bad = add("bbbb");
  add("c");
  add("d");
  put_u32(body_.data() + bad + 4, 1u << 30);  // impossible length
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_EQ(r.corrupt_records, 1u);

  put_u32(body_.data() + bad + 4, 1);  // plausible but wrong length
  r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c", "d"}));
}

TEST_F(scanner_test, zeroed_stretch_in_the_middle_is_skipped) {
  add("a");
  size_t bad = add(std::string(50, 'b'));
  add("c");
  std::fill(body_.begin() + static_cast<long>(bad), body_.begin() + static_cast<long>(bad) + 30,
            '\0');
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(r.corrupt_records, 1u);
}

TEST_F(scanner_test, garbage_after_the_last_record_is_tail) {
  add("a");
  body_ += "garbage that is not a record";
  scan_result r = scan();
  EXPECT_EQ(seen_, std::vector<std::string>{"a"});
  EXPECT_EQ(r.tail_bytes, 28u);
  EXPECT_EQ(r.corrupt_records, 0u);
}

TEST_F(scanner_test, two_damaged_records_are_counted_separately) {
  size_t b1 = add("one");
  add("two");
  size_t b2 = add("three");
  add("four");
  body_[b1] ^= 1;
  body_[b2] ^= 1;
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"two", "four"}));
  EXPECT_EQ(r.corrupt_records, 2u);
}

TEST_F(scanner_test, megabytes_of_random_garbage_scan_in_bounded_time) {
  std::mt19937_64 rng(1);
  body_.resize(4 << 20);
  for (char& c : body_) c = static_cast<char>(rng());
  add("survivor");
  auto start = std::chrono::steady_clock::now();
  scan_result r = scan();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(seen_, std::vector<std::string>{"survivor"});
  EXPECT_EQ(r.corrupt_records, 1u);
}

}  // namespace
}  // namespace sqsrelay::wal
