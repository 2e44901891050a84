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

std::string payload_of(size_t size, std::mt19937_64& rng) {
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

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

// The length field is the damaged one and now points exactly at a later record: jumping
// there would drop the intact records in between.
TEST_F(scanner_test, length_pointing_at_a_later_record_loses_only_the_damaged_record) {
  add("a");
  size_t bad = add("bbbb");
  add("c");
  add(std::string(1000, 'd'));
  size_t e = add("e");
  add("f");
  put_u32(body_.data() + bad + 4, static_cast<uint32_t>(e - bad - record_header_size));
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c", std::string(1000, 'd'), "e", "f"}));
  EXPECT_EQ(r.corrupt_records, 1u);
  EXPECT_EQ(r.skipped_bytes, record_header_size + 4);
  EXPECT_EQ(r.tail_bytes, 0u);
}

// The length field now points exactly at the end of the body, where the next appends go:
// the records after the damage are kept, before and after more records fill that spot.
TEST_F(scanner_test, length_pointing_at_the_end_keeps_the_records_after_it_for_good) {
  add("a");
  size_t bad = add("bbbb");
  add("c");
  add(std::string(600, 'd'));
  put_u32(body_.data() + bad + 4, static_cast<uint32_t>(body_.size() - bad - record_header_size));
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c", std::string(600, 'd')}));
  EXPECT_EQ(r.corrupt_records, 1u);
  EXPECT_EQ(r.valid_end, base + body_.size());

  add("e");
  add(std::string(700, 'f'));
  r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c", std::string(600, 'd'), "e",
                                             std::string(700, 'f')}));
  EXPECT_EQ(r.corrupt_records, 1u);
  EXPECT_EQ(r.skipped_bytes, record_header_size + 4);
}

// Every record but the damaged one survives, whatever record boundary (or the end, or a
// byte in between) the damaged length now points at.
TEST_F(scanner_test, any_damaged_length_loses_only_its_own_record) {
  std::mt19937_64 rng(7);
  std::vector<std::string> payloads;
  std::vector<size_t> starts;
  for (int i = 0; i < 12; ++i) {
    payloads.push_back(std::string(rng() % 300, static_cast<char>('a' + i)));
    starts.push_back(add(payloads.back(), static_cast<uint8_t>(i)));
  }
  starts.push_back(body_.size());
  const std::string intact = body_;
  for (size_t bad = 0; bad < payloads.size(); ++bad) {
    auto expected = payloads;
    expected.erase(expected.begin() + static_cast<long>(bad));
    for (size_t target = starts[bad] + record_header_size; target <= body_.size(); ++target) {
      if (target == starts[bad + 1]) continue;  // the true length
      body_ = intact;
      put_u32(body_.data() + starts[bad] + 4,
              static_cast<uint32_t>(target - starts[bad] - record_header_size));
      scan();
      ASSERT_EQ(seen_, expected) << "record " << bad << ", length to " << target;
    }
  }
}

// A resync candidate must not be judged by what follows it: an intact record directly
// followed by another damaged header is kept.
TEST_F(scanner_test, intact_record_between_two_damaged_lengths_is_kept) {
  add("a");
  size_t b1 = add("bbbb");
  add("c");
  size_t b2 = add("dddd");
  add("e");
  put_u32(body_.data() + b1 + 4, 1u << 30);
  put_u32(body_.data() + b2 + 4, 1u << 30);
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", "c", "e"}));
  EXPECT_EQ(r.corrupt_records, 2u);
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

// Preallocated segments: zeros to the end are where the data stops, not damage.
TEST_F(scanner_test, zeros_after_the_last_record_are_the_clean_end) {
  add("a");
  add(std::string(20, '\0'));  // a record that itself ends in zeros
  const size_t end = body_.size();
  body_.append(100000, '\0');
  scan_result r = scan();
  EXPECT_EQ(seen_, (std::vector<std::string>{"a", std::string(20, '\0')}));
  EXPECT_EQ(r.valid_end, base + end);
  EXPECT_EQ(r.zero_bytes, 100000u);
  EXPECT_EQ(r.tail_bytes, 0u);
  EXPECT_EQ(r.corrupt_records, 0u);
}

TEST_F(scanner_test, an_all_zero_body_has_no_records_and_no_damage) {
  body_.assign(4096, '\0');
  scan_result r = scan();
  EXPECT_EQ(r.records, 0u);
  EXPECT_EQ(r.valid_end, base);
  EXPECT_EQ(r.zero_bytes, 4096u);
  EXPECT_EQ(r.tail_bytes + r.corrupt_records, 0u);
  // Why zeros can never hide a record: the only record an all-zero stretch could announce
  // is an empty one of type 0, whose stored (masked) checksum is not zero.
  EXPECT_NE(mask_crc(record_crc(std::string(1, '\0'))), 0u);
}

TEST_F(scanner_test, a_torn_record_before_zeros_is_tail) {
  add("a");
  const size_t torn = add(std::string(300, 'b'));
  body_.resize(torn + 100);  // the write stopped in the payload
  body_.append(5000, '\0');  // the rest of a preallocated segment
  scan_result r = scan();
  EXPECT_EQ(seen_, std::vector<std::string>{"a"});
  EXPECT_EQ(r.valid_end, base + torn);
  EXPECT_EQ(r.tail_bytes, 5100u);
  EXPECT_EQ(r.zero_bytes, 0u);
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

// Bytes 0x01 announce a 16 MiB record at every position: checksumming each candidate's
// whole length would take hours. All records after the garbage are found.
TEST_F(scanner_test, garbage_announcing_long_records_everywhere_scans_in_bounded_time) {
  add("before");
  body_ += std::string(20 << 20, '\x01');
  add("after 1");
  add(std::string(5000, 'x'));
  add("after 3");
  auto start = std::chrono::steady_clock::now();
  scan_result r = scan();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(20));
  EXPECT_EQ(seen_,
            (std::vector<std::string>{"before", "after 1", std::string(5000, 'x'), "after 3"}));
  EXPECT_EQ(r.corrupt_records, 1u);
  EXPECT_EQ(r.tail_bytes, 0u);
}

TEST_F(scanner_test, intact_records_after_long_random_garbage_are_all_found) {
  std::mt19937_64 rng(3);
  body_.resize(16 << 20);
  for (char& c : body_) c = static_cast<char>(rng());
  std::vector<std::string> expected;
  for (int i = 0; i < 50; ++i) {
    expected.push_back(payload_of(rng() % 4000, rng));
    add(expected.back());
  }
  auto start = std::chrono::steady_clock::now();
  scan_result r = scan();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(20));
  EXPECT_EQ(seen_, expected);
  EXPECT_EQ(r.corrupt_records, 1u);
}

}  // namespace
}  // namespace sqsrelay::wal
