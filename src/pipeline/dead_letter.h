// Where messages that SQS can never accept end up: a sink the sender hands them to, and the
// NDJSON file implementation.
//
// File format: one JSON object per line, in the order written:
//   {"time":"2026-11-21T08:30:00.123Z","queue":"orders","reason":"oversize",
//    "code":"MessageTooLong","detail":"...","attempts":0,
//    "body":"...",                    (or "body_base64":"..." when the body is not UTF-8)
//    "attributes":{"type":{"DataType":"String","StringValue":"x"},
//                  "raw":{"DataType":"Binary","BinaryValue":"<base64>"}},
//    "group_id":"...","dedup_id":"..."}   (only when set)
// The attributes object has the SendMessage shape, so a line can be replayed as is.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "pipeline/message.h"

namespace sqsrelay::pipeline {

struct dead_letter_record {
  std::string_view queue;
  const outbound_message* message = nullptr;
  const rejection* why = nullptr;
  uint32_t attempts = 0;
};

// Appends `rec` as one NDJSON line (with '\n') to `out`.
void append_dead_letter_line(std::string& out, const dead_letter_record& rec,
                             std::chrono::system_clock::time_point when);

class dead_letter_sink {
 public:
  virtual ~dead_letter_sink() = default;
  // Stores `records` (the pointed-to data stays valid until `done` runs). `done` runs once,
  // on any thread, after the records are durable (error: they are not).
  virtual void write(std::vector<dead_letter_record> records,
                     std::function<void(error_code)> done) = 0;
};

// An append-only NDJSON file. Lines are formatted on the caller's thread; one writer thread
// writes everything queued and fdatasyncs once per round (group commit), then runs the
// callbacks of that round. Thread-safe.
class ndjson_dead_letter_file final : public dead_letter_sink {
 public:
  // Opens (creating, appending) `path`.
  static result<std::unique_ptr<ndjson_dead_letter_file>> open(
      const std::string& path, clock& clk = system_clock::instance());
  ~ndjson_dead_letter_file() override;  // writes and syncs what is queued, then closes
  ndjson_dead_letter_file(const ndjson_dead_letter_file&) = delete;
  ndjson_dead_letter_file& operator=(const ndjson_dead_letter_file&) = delete;

  void write(std::vector<dead_letter_record> records,
             std::function<void(error_code)> done) override;

  const std::string& path() const { return path_; }

 private:
  ndjson_dead_letter_file(int fd, std::string path, clock& clk);
  void run();

  int fd_;
  std::string path_;
  clock& clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;                                // guarded by mu_
  std::vector<std::function<void(error_code)>> waiting_;  // guarded by mu_
  bool stopping_ = false;                              // guarded by mu_
  std::thread writer_;
};

}  // namespace sqsrelay::pipeline
