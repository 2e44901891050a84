#include "pipeline/message_reader.h"

#include <fmt/format.h>
#include <simdjson.h>

#include "base/hash.h"
#include "base/json_scan.h"

namespace sqsrelay::pipeline {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void append_pointer_token(std::string& out, std::string_view tok) {
  out.push_back('/');
  for (char c : tok) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out.push_back(c);
  }
}

// String, Number or Binary, alone or with a custom label: "Number.int".
bool valid_attribute_type(std::string_view type) {
  for (std::string_view t : {"String", "Number", "Binary"}) {
    if (!type.starts_with(t)) continue;
    if (type.size() == t.size()) return true;
    return type[t.size()] == '.' && type.size() > t.size() + 1;
  }
  return false;
}

}  // namespace

struct message_reader::json_state {
  simdjson::dom::parser parser;
  std::string masked;  // a record with its wide numbers masked (json_scan::mask_wide_numbers)
};

std::optional<input_format> parse_input_format(std::string_view s) {
  if (s == "auto") return input_format::auto_detect;
  if (s == "lines" || s == "text") return input_format::lines;
  if (s == "ndjson" || s == "jsonl") return input_format::ndjson;
  if (s == "json" || s == "json-array" || s == "array") return input_format::json_array;
  return std::nullopt;
}

std::string_view to_string(input_format f) {
  switch (f) {
    case input_format::auto_detect: return "auto";
    case input_format::lines: return "lines";
    case input_format::ndjson: return "ndjson";
    case input_format::json_array: return "json-array";
  }
  return "unknown";
}

std::optional<std::string> json_path_to_pointer(std::string_view path) {
  if (path.empty()) return std::nullopt;
  if (path.front() == '/') return std::string(path);
  if (path.front() == '$') path.remove_prefix(1);
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '.') {
      ++i;
      size_t end = path.find_first_of(".[", i);
      if (end == std::string_view::npos) end = path.size();
      if (end == i) return std::nullopt;
      append_pointer_token(out, path.substr(i, end - i));
      i = end;
    } else if (path[i] == '[') {
      size_t end = path.find(']', i);
      if (end == std::string_view::npos || end == i + 1) return std::nullopt;
      std::string_view inner = path.substr(i + 1, end - i - 1);
      if (inner.size() >= 2 && (inner.front() == '\'' || inner.front() == '"') &&
          inner.back() == inner.front())
        inner = inner.substr(1, inner.size() - 2);
      else if (inner.find_first_not_of("0123456789") != std::string_view::npos)
        return std::nullopt;
      append_pointer_token(out, inner);
      i = end + 1;
    } else if (i == 0) {  // "a.b": a bare first name
      size_t end = path.find_first_of(".[");
      if (end == std::string_view::npos) end = path.size();
      append_pointer_token(out, path.substr(0, end));
      i = end;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

std::optional<attribute_field> parse_attribute_field(std::string_view spec, std::string& error) {
  size_t eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    error = fmt::format("'{}': expected NAME=[TYPE:]PATH", spec);
    return std::nullopt;
  }
  attribute_field f;
  f.name = std::string(spec.substr(0, eq));
  std::string_view rest = spec.substr(eq + 1);
  // TYPE: is what precedes the first ':' unless that starts a path ($... or /...). A word
  // SQS would not accept (e.g. lower-case "string") is an error here: taken as part of the
  // path it would silently never match and drop the attribute.
  size_t colon = rest.find(':');
  if (colon != std::string_view::npos && !rest.starts_with('$') && !rest.starts_with('/')) {
    std::string_view type = rest.substr(0, colon);
    if (!valid_attribute_type(type)) {
      error = fmt::format(
          "'{}': unknown attribute type '{}': expected String, Number or Binary, optionally "
          "with a custom label (Number.int)",
          spec, type);
      return std::nullopt;
    }
    f.data_type = std::string(type);
    rest = rest.substr(colon + 1);
  }
  auto ptr = json_path_to_pointer(rest);
  if (!ptr) {
    error = fmt::format("'{}': '{}' is not a field path ($.a.b[0] or /a/b/0)", spec, rest);
    return std::nullopt;
  }
  f.pointer = *ptr;
  return f;
}

message_reader::message_reader(reader_options o, message_fn on_message, error_fn on_error)
    : o_(std::move(o)),
      on_message_(std::move(on_message)),
      on_error_(std::move(on_error)),
      json_(std::make_unique<json_state>()),
      format_(o_.format) {}

message_reader::~message_reader() = default;

// Drops a UTF-8 byte order mark at the start of the input (Windows editors write one); it is
// not part of the first record and would hide a '[' or '{' from format detection. False while
// the input so far could still be the start of one.
bool message_reader::skip_bom(bool eof) {
  if (bom_checked_) return true;
  constexpr std::string_view bom = "\xEF\xBB\xBF";
  if (!eof && buf_.size() < bom.size() && bom.substr(0, buf_.size()) == buf_) return false;
  bom_checked_ = true;
  if (std::string_view(buf_).substr(0, bom.size()) == bom) {
    buf_.erase(0, bom.size());
    base_offset_ += bom.size();
  }
  return true;
}

void message_reader::feed(std::string_view bytes) {
  if (fatal_) return;
  buf_.append(bytes);
  if (!skip_bom(false)) return;
  if (format_ == input_format::auto_detect) {
    size_t first = buf_.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return;  // only blanks so far
    format_ = buf_[first] == '[' ? input_format::json_array
              : buf_[first] == '{' ? input_format::ndjson
                                   : input_format::lines;
  }
  if (format_ == input_format::json_array)
    scan_array(false);
  else
    scan_lines(false);
  compact();
}

void message_reader::finish() {
  if (fatal_) return;
  skip_bom(true);
  if (format_ == input_format::auto_detect) format_ = input_format::lines;
  if (format_ == input_format::json_array)
    scan_array(true);
  else
    scan_lines(true);
  compact();
}

void message_reader::compact() {
  if (start_ == 0) return;
  buf_.erase(0, start_);
  base_offset_ += start_;
  pos_ -= start_;
  start_ = 0;
}

void message_reader::scan_lines(bool eof) {
  for (;;) {
    size_t nl = buf_.find('\n', pos_);
    size_t end = nl == std::string::npos ? buf_.size() : nl;
    if (nl == std::string::npos && !eof) {
      if (!skipping_ && end - start_ > o_.max_record_bytes) {
        ++records_;
        error(fmt::format("record longer than {} bytes; skipped", o_.max_record_bytes),
              std::string_view(buf_).substr(start_, end - start_), record_line_,
              base_offset_ + start_);
        skipping_ = true;
      }
      pos_ = end;
      if (skipping_) start_ = pos_;  // drop what we have of it
      return;
    }
    if (skipping_) {
      skipping_ = false;
    } else {
      std::string_view text = std::string_view(buf_).substr(start_, end - start_);
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      // Lines of only spaces, tabs and CRs are blank in every line format (as the docs say).
      if (trim(text).empty())
        ++blank_;
      else
        emit(text, record_line_, base_offset_ + start_);
    }
    if (nl == std::string::npos) {  // eof
      start_ = pos_ = buf_.size();
      return;
    }
    ++line_;
    record_line_ = line_;
    start_ = pos_ = nl + 1;
  }
}

void message_reader::scan_array(bool eof) {
  for (; pos_ < buf_.size(); ++pos_) {
    char c = buf_[pos_];
    if (in_element_) {
      if (!skipping_ && pos_ - start_ > o_.max_record_bytes) {
        ++records_;
        error(fmt::format("array element longer than {} bytes; skipped", o_.max_record_bytes),
              std::string_view(buf_).substr(start_, 200), record_line_, base_offset_ + start_);
        skipping_ = true;
      }
      if (skipping_) start_ = pos_;  // keep nothing of it
    }
    if (in_string_) {
      if (escape_)
        escape_ = false;
      else if (c == '\\')
        escape_ = true;
      else if (c == '"')
        in_string_ = false;
      else if (c == '\n')
        ++line_;
      continue;
    }
    if (c == '\n') ++line_;
    if (!array_open_ || array_done_) {
      if (is_space(c)) continue;
      if (!array_open_ && c == '[') {
        array_open_ = true;
        depth_ = 1;
        continue;
      }
      error(array_done_ ? "unexpected data after the JSON array" : "expected '[' (a JSON array)",
            std::string_view(buf_).substr(pos_, 200), line_, base_offset_ + pos_);
      fatal_ = true;
      return;
    }
    if (!in_element_) {
      if (is_space(c) || c == ',') continue;
      if (c == ']') {
        array_done_ = true;
        depth_ = 0;
        continue;
      }
      in_element_ = true;
      start_ = pos_;
      record_line_ = line_;
    }
    bool end_element = false;
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (depth_ == 1) {
        end_element = true;
        array_done_ = c == ']';
        if (c == '}') {
          error("unbalanced '}' in the JSON array", std::string_view(buf_).substr(start_, 200),
                record_line_, base_offset_ + start_);
          fatal_ = true;
          return;
        }
      } else {
        --depth_;
      }
    } else if (c == ',' && depth_ == 1) {
      end_element = true;
    }
    if (end_element) {
      if (skipping_)
        skipping_ = false;
      else
        emit(trim(std::string_view(buf_).substr(start_, pos_ - start_)), record_line_,
             base_offset_ + start_);
      in_element_ = false;
      if (array_done_) depth_ = 0;
      start_ = pos_ + 1;
      continue;
    }
  }
  if (!in_element_) start_ = pos_;
  if (eof && array_open_ && !array_done_) {
    error("the JSON array is not terminated (missing ']')",
          std::string_view(buf_).substr(start_, 200), record_line_, base_offset_ + start_);
  }
}

void message_reader::emit(std::string_view text, uint64_t line, uint64_t offset) {
  ++records_;
  outbound_message m;
  if (format_ == input_format::lines) {
    m.body = std::string(text);
    on_message_(std::move(m), records_, line);
    return;
  }
  auto doc = json_->parser.parse(text.data(), text.size());
  // simdjson's DOM refuses numbers it cannot hold (integers past 64 bits, doubles past their
  // range), though they are valid JSON and the body is only the record's compact text: then
  // the record is validated with those numbers masked, and its body still comes from `text`.
  bool masked = false;
  if (doc.error() == simdjson::NUMBER_ERROR) {
    json_->masked.assign(text);
    if (json_scan::mask_wide_numbers(json_->masked) > 0) {
      doc = json_->parser.parse(json_->masked.data(), json_->masked.size());
      masked = true;
    }
  }
  if (doc.error()) {
    return error(fmt::format("invalid JSON: {}", simdjson::error_message(doc.error())), text,
                 line, offset);
  }
  m.body.resize(text.size());
  size_t n = 0;
  if (simdjson::minify(text.data(), text.size(), m.body.data(), n) != simdjson::SUCCESS) {
    return error("invalid JSON (minify)", text, line, offset);
  }
  m.body.resize(n);
  simdjson::dom::element root = doc.value_unsafe();
  auto text_of = [](simdjson::dom::element e) -> std::string {
    std::string_view sv;
    if (e.get_string().get(sv) == simdjson::SUCCESS) return std::string(sv);
    return simdjson::minify(e);
  };
  for (const auto& f : o_.attributes) {
    simdjson::dom::element v;
    if (root.at_pointer(f.pointer).get(v) != simdjson::SUCCESS) continue;
    // A masked number reads as 0: in such a record, numbers are not taken as attributes
    // (the value could be the mask, not the number sent).
    if (masked && v.is_number())
      return error(fmt::format("field {} for attribute {}: a record with numbers wider than "
                               "64 bits cannot give number attributes",
                               f.pointer, f.name),
                   text, line, offset);
    message_attribute a;
    a.name = f.name;
    a.data_type = !f.data_type.empty() ? f.data_type : v.is_number() ? "Number" : "String";
    a.value = text_of(v);
    if (a.binary()) {
      std::string raw;
      if (!v.is_string() || !base64_decode(a.value, raw)) {
        return error(fmt::format("field {} for Binary attribute {} is not base64 text",
                                 f.pointer, f.name),
                     text, line, offset);
      }
      a.value = std::move(raw);
    }
    m.attributes.push_back(std::move(a));
  }
  simdjson::dom::element v;
  if (!o_.group_pointer.empty() && root.at_pointer(o_.group_pointer).get(v) == simdjson::SUCCESS)
    m.group_id = text_of(v);
  if (!o_.dedup_pointer.empty() && root.at_pointer(o_.dedup_pointer).get(v) == simdjson::SUCCESS)
    m.dedup_id = text_of(v);
  on_message_(std::move(m), records_, line);
}

void message_reader::error(std::string what, std::string_view raw, uint64_t line,
                           uint64_t offset) {
  ++errors_;
  if (on_error_) on_error_(input_error{records_, line, offset, std::move(what), raw});
}

}  // namespace sqsrelay::pipeline
