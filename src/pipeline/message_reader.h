// Turns a byte stream (stdin, a file) into outbound messages, incrementally: plain lines,
// NDJSON (one JSON value per line) or one JSON array (each element one message), never
// holding more than the current record in memory, so a 10 GB input streams through.
//
// JSON bodies are the element's compact text (whitespace outside strings removed; strings,
// numbers and key order kept byte for byte). Message attributes, the group id and the
// deduplication id can be taken from fields of each JSON record:
//   --attr-field NAME=[TYPE:]PATH    TYPE String | Number | Binary (base64 text decoded),
//                                    optionally labelled ("Number.int"); absent: Number for
//                                    JSON numbers, String for everything else (objects,
//                                    arrays and booleans as their compact JSON text)
//   --group-field PATH, --dedup-field PATH
// PATH is `$.a.b[0]` (also `.a.b`, `a.b`) or a JSON pointer `/a/b/0`. A record without the
// field gets no attribute / id.
//
// Bad records (invalid JSON, a record past `max_record_bytes`, a Binary field that is not
// base64) are reported with their record number, line and byte offset, and skipped; the rest
// of the input continues. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/message.h"

namespace sqsrelay::pipeline {

enum class input_format { auto_detect, lines, ndjson, json_array };
std::optional<input_format> parse_input_format(std::string_view s);
std::string_view to_string(input_format f);

struct attribute_field {
  std::string name;
  std::string data_type;  // empty: inferred from the JSON value
  std::string pointer;    // JSON pointer
};

// "$.a.b[0]" / ".a.b" / "a.b" / "/a/b/0" -> "/a/b/0"; nullopt when malformed.
std::optional<std::string> json_path_to_pointer(std::string_view path);
// "NAME=[TYPE:]PATH"; on failure returns nullopt and explains in `error`.
std::optional<attribute_field> parse_attribute_field(std::string_view spec, std::string& error);

struct reader_options {
  input_format format = input_format::auto_detect;
  std::vector<attribute_field> attributes;
  std::string group_pointer;  // empty: none
  std::string dedup_pointer;
  size_t max_record_bytes = size_t{4} << 20;
};

struct input_error {
  uint64_t record = 0;  // 1-based
  uint64_t line = 0;    // 1-based line where the record starts
  uint64_t offset = 0;  // byte offset where the record starts
  std::string what;
  std::string_view raw;  // the record's text (a prefix when too long); valid during the call
};

class message_reader {
 public:
  // `record` counts records (1-based); `line` is where the record starts (1-based).
  using message_fn = std::function<void(outbound_message&&, uint64_t record, uint64_t line)>;
  using error_fn = std::function<void(const input_error&)>;

  message_reader(reader_options o, message_fn on_message, error_fn on_error);
  ~message_reader();
  message_reader(const message_reader&) = delete;
  message_reader& operator=(const message_reader&) = delete;

  void feed(std::string_view bytes);
  // End of input: a last line without '\n' is a record; an unterminated array is an error.
  void finish();

  // The format in use (after auto-detection: from the first non-blank byte, '[' is a JSON
  // array, '{' NDJSON, anything else lines).
  input_format format() const { return format_; }
  uint64_t records() const { return records_; }
  uint64_t errors() const { return errors_; }
  uint64_t blank_lines() const { return blank_; }

 private:
  struct json_state;
  void scan_lines(bool eof);
  void scan_array(bool eof);
  void emit(std::string_view text, uint64_t line, uint64_t offset);
  void error(std::string what, std::string_view raw, uint64_t line, uint64_t offset);
  void compact();
  bool skip_bom(bool eof);

  reader_options o_;
  message_fn on_message_;
  error_fn on_error_;
  std::unique_ptr<json_state> json_;
  input_format format_;
  std::string buf_;        // unconsumed input
  size_t pos_ = 0;         // scan position in buf_
  size_t start_ = 0;       // start of the current record in buf_
  uint64_t base_offset_ = 0;  // input offset of buf_[0]
  uint64_t line_ = 1;         // line number at buf_[pos_]
  uint64_t record_line_ = 1;
  uint64_t records_ = 0, errors_ = 0, blank_ = 0;
  bool skipping_ = false;     // the current record is too long: discard to its end
  bool bom_checked_ = false;  // a leading UTF-8 byte order mark was looked for (and dropped)
  // JSON array scanner state.
  bool array_open_ = false, array_done_ = false, in_string_ = false, escape_ = false;
  bool in_element_ = false;
  int depth_ = 0;
  bool fatal_ = false;
};

}  // namespace sqsrelay::pipeline
