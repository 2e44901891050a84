#include "sources/http_ingest/body_parser.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "base/json_scan.h"

namespace sqsrelay::sources {

namespace dom = simdjson::dom;

namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// MessageGroupId / MessageDeduplicationId: 1..128 printable ASCII characters, no space.
bool valid_fifo_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Byte offset and code point of the first character SQS refuses in `s` (slow path: only
// called once valid_message_text said no). Invalid UTF-8 reports code point -1.
std::pair<size_t, int32_t> first_invalid_character(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + static_cast<size_t>(len) > s.size()) return {i, -1};
    if (!sqs::valid_message_text(s.substr(i, static_cast<size_t>(len)))) {
      int32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
      for (int k = 1; k < len; ++k)
        cp = (cp << 6) | (static_cast<uint8_t>(s[i + static_cast<size_t>(k)]) & 0x3f);
      return {i, cp};
    }
    i += static_cast<size_t>(len);
  }
  return {s.size(), -1};
}

// Appends into an ingest_batch's text, then builds its views once the text stops moving.
class batch_arena {
 public:
  struct ref {
    size_t off = 0, len = 0;
  };
  explicit batch_arena(std::vector<char>& text) : text_(text) {}
  size_t size() const { return text_.size(); }
  ref append(std::string_view s) {
    ref r{text_.size(), s.size()};
    text_.insert(text_.end(), s.begin(), s.end());
    return r;
  }
  // Appends the compact form of the JSON text `json`.
  ref append_minified(std::string_view json) {
    size_t off = text_.size();
    text_.resize(off + json.size());
    size_t n = 0;
    if (simdjson::minify(json.data(), json.size(), text_.data() + off, n) != simdjson::SUCCESS)
      n = 0;  // unreachable for text simdjson already parsed; leaves an empty body
    text_.resize(off + n);
    return {off, n};
  }
  void truncate(size_t n) { text_.resize(n); }
  std::string_view view(ref r) const { return {text_.data() + r.off, r.len}; }

 private:
  std::vector<char>& text_;
};

}  // namespace

// Builds batches; the friend of ingest_batch that fills its private parts.
class batch_builder {
 public:
  struct pending_attr {
    batch_arena::ref name, type, value;
  };
  struct pending_message {
    uint32_t index;
    uint64_t offset;
    batch_arena::ref body, group, dedup;
    uint32_t attr_begin, attr_count;
  };
  struct pending_dead {
    uint32_t index;
    uint64_t offset;
    std::string_view reason;  // static strings
    batch_arena::ref detail, raw;
  };

  static std::vector<char>& text(ingest_batch& b) { return b.text_; }

  static void finalize(ingest_batch& b, const std::vector<pending_message>& msgs,
                       const std::vector<pending_attr>& attrs,
                       const std::vector<pending_dead>& dead) {
    auto view = [&b](batch_arena::ref r) {
      return std::string_view(b.text_.data() + r.off, r.len);
    };
    b.attrs_.reserve(attrs.size());
    for (const auto& a : attrs)
      b.attrs_.push_back(sqs::attribute_view{view(a.name), view(a.type), view(a.value), false});
    b.messages_.reserve(msgs.size());
    for (const auto& m : msgs) {
      b.messages_.push_back(ingest_batch::message{
          m.index, m.offset, view(m.body),
          std::span<const sqs::attribute_view>(b.attrs_.data() + m.attr_begin, m.attr_count),
          view(m.group), view(m.dedup)});
    }
    b.dead_.reserve(dead.size());
    for (const auto& d : dead)
      b.dead_.push_back(
          ingest_batch::dead_letter{d.index, d.offset, d.reason, view(d.detail), view(d.raw)});
  }
};

std::string field_pointer(std::string_view field) {
  if (field.empty() || field.front() == '/') return std::string(field);
  std::string p = "/";
  for (char c : field) {
    if (c == '~')
      p += "~0";
    else if (c == '/')
      p += "~1";
    else
      p += c;
  }
  return p;
}

body_format detect_format(body_format configured, std::string_view content_type) {
  if (configured != body_format::auto_detect) return configured;
  std::string ct = lower(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (ct == "application/x-ndjson" || ct == "application/ndjson" || ct == "application/jsonlines" ||
      ct == "application/x-jsonlines" || ct == "application/jsonl" || ct == "application/json-seq")
    return body_format::ndjson;
  if (ct == "application/json" || (ct.size() > 5 && ct.ends_with("+json")))
    return body_format::json;
  return body_format::auto_detect;  // decided by content
}

struct body_parser::impl {
  // An allocation failure here surfaces again (MEMALLOC) on the first parse.
  // simdjson refuses a document whose containers reach its max_depth (`depth` levels of
  // arrays and objects are allowed only with max_depth = depth + 1).
  impl(size_t depth, size_t messages)
      : max_depth(depth),
        max_messages(messages),
        preallocated(parser.allocate(64u << 10, depth + 1) == simdjson::SUCCESS) {}

  size_t max_depth;
  size_t max_messages;
  dom::parser parser;
  bool preallocated;
  bool copy = true;  // parse copies (the body lacks padding); see parse()
  // Reused across requests (cleared, capacity kept).
  std::vector<std::string_view> slices;
  std::vector<uint8_t> compact_flags;  // per slice: no whitespace outside strings
  std::vector<batch_builder::pending_message> msgs;
  std::vector<batch_builder::pending_attr> attrs;
  std::vector<batch_builder::pending_dead> dead;
  std::vector<sqs::attribute_view> check;
  std::string scratch;
  std::string masked;           // a copy of the text with wide numbers masked
  bool numbers_masked = false;  // the current document was parsed from `masked`
  std::string_view element_raw;  // the bytes of the element add_element works on
  // The route's attribute names and types, once per batch.
  std::vector<std::pair<batch_arena::ref, batch_arena::ref>> names;

  parse_outcome parse(const route_options& r, std::string_view content_type, std::string& body);

 private:
  void parse_json(const route_options& r, std::string_view body, batch_arena& a,
                  parse_outcome& out);
  void parse_ndjson(const route_options& r, std::string_view body, batch_arena& a,
                    parse_outcome& out);
  void report_document_error(simdjson::error_code ec, std::string_view body, std::string_view array,
                             parse_outcome& out);
  // More elements than one request may carry: each costs memory beyond its bytes (tiny
  // elements many times their size), so the count is bounded like the body's size.
  // `seen`: the count when known (an array), 0 when reading stopped at the limit (NDJSON).
  void too_many_messages(size_t seen, parse_outcome& out) {
    out.request_error = true;
    out.reason = "too_many_messages";
    out.detail = fmt::format("the request has {}{} messages; at most {} per request (split it)",
                             seen ? "" : "more than ", seen ? seen : max_messages, max_messages);
  }
  // `compact`: `raw` is known to hold no whitespace outside strings (no minify needed).
  void add_element(const route_options& r, dom::element el, std::string_view raw, uint64_t offset,
                   batch_arena& a, parse_outcome& out, bool compact = false);
  simdjson::error_code parse_document(std::string_view text, bool copy_text, dom::element& root);
  bool masked_number_text(const std::string& pointer, std::string_view& out);
  bool field_text(dom::element el, const std::string& pointer, std::string_view& out);
  void reject_element(uint32_t index, uint64_t offset, std::string_view reason, std::string detail,
                      std::string_view raw, batch_arena& a, parse_outcome& out);
};

body_parser::body_parser(size_t max_depth, size_t max_messages)
    : impl_(std::make_unique<impl>(max_depth, max_messages)) {}
body_parser::~body_parser() = default;

parse_outcome body_parser::parse(const route_options& route, std::string_view content_type,
                                 std::string& body) {
  return impl_->parse(route, content_type, body);
}

parse_outcome body_parser::impl::parse(const route_options& r, std::string_view content_type,
                                       std::string& body) {
  parse_outcome out;
  msgs.clear();
  attrs.clear();
  dead.clear();
  names.clear();
  // A UTF-8 byte order mark (some Windows tools write one) becomes whitespace: JSON allows
  // none, and byte offsets in errors stay those of the body received.
  if (body.starts_with("\xEF\xBB\xBF")) body.replace(0, 3, "   ");
  // simdjson reads up to SIMDJSON_PADDING bytes past the end of what it parses. Without
  // that much spare capacity, it parses a copy in its own reused buffer (a memcpy; growing
  // the body instead would cost an allocation per request).
  copy = body.capacity() - body.size() < simdjson::SIMDJSON_PADDING;
  std::string_view text(body);
  const char* first = json_scan::skip_ws(text.data(), text.data() + text.size());
  if (first == text.data() + text.size()) {
    out.request_error = true;
    out.reason = "empty_body";
    out.detail = "the request body is empty; send a JSON array, NDJSON lines or a JSON value";
    return out;
  }
  auto& t = batch_builder::text(out.batch);
  t.reserve(body.size() + 64 * r.attributes.size());
  batch_arena a(t);
  for (const auto& f : r.attributes) names.emplace_back(a.append(f.name), a.append(f.data_type));

  body_format fmt = detect_format(r.format, content_type);
  if (fmt == body_format::auto_detect) {
    // Content sniffing: one JSON value (possibly followed by whitespace) is a JSON body;
    // more values after the first make it NDJSON.
    size_t depth = 0;
    const char* end = json_scan::skip_value(first, text.data() + text.size(), depth);
    bool single =
        end && json_scan::skip_ws(end, text.data() + text.size()) == text.data() + text.size();
    fmt = single || !end ? body_format::json : body_format::ndjson;
  }
  if (fmt == body_format::ndjson)
    parse_ndjson(r, text, a, out);
  else
    parse_json(r, text, a, out);
  if (!out.request_error) batch_builder::finalize(out.batch, msgs, attrs, dead);
  return out;
}

void body_parser::impl::parse_json(const route_options& r, std::string_view body, batch_arena& a,
                                   parse_outcome& out) {
  dom::element root;
  auto ec = parse_document(body, copy, root);
  std::string_view array_text;
  const char* b = body.data();
  const char* e = b + body.size();
  const char* start = json_scan::skip_ws(b, e);
  if (!ec && root.is_object() && !r.records_field.empty()) {
    dom::element inner;
    if (root.at_pointer(r.records_field).get(inner) || !inner.is_array()) {
      out.request_error = true;
      out.reason = "no_records_array";
      out.detail = fmt::format("the body is an object without an array at '{}'", r.records_field);
      return;
    }
    array_text =
        json_scan::locate(std::string_view(start, static_cast<size_t>(e - start)), r.records_field);
    root = inner;
  } else if (*start == '[') {
    array_text = std::string_view(start, static_cast<size_t>(e - start));
  }
  if (ec) return report_document_error(ec, body, array_text, out);
  if (!root.is_array()) {
    // A single JSON value is one message.
    const char* end = e;
    while (end > start && json_scan::is_ws(end[-1])) --end;
    out.elements = 1;
    add_element(r, root, std::string_view(start, static_cast<size_t>(end - start)),
                static_cast<uint64_t>(start - b), a, out);
    return;
  }
  slices.clear();
  compact_flags.clear();
  const char* fail = nullptr;
  if (array_text.empty() || !json_scan::split_array(array_text, slices, fail, &compact_flags)) {
    // simdjson accepted the document, so the scanner should too: an internal limitation.
    out.request_error = true;
    out.reason = "unsupported_json";
    out.detail =
        "could not locate the array's elements (a key with escape sequences on the "
        "path to records_field?)";
    return;
  }
  if (slices.size() > max_messages) return too_many_messages(slices.size(), out);
  dom::array arr = root.get_array().value_unsafe();
  size_t i = 0;
  for (dom::element el : arr) {
    if (i >= slices.size()) break;  // counts agree for valid JSON; guard anyway
    bool is_compact = compact_flags[i];
    std::string_view raw = slices[i++];
    out.elements += 1;
    add_element(r, el, raw, static_cast<uint64_t>(raw.data() - b), a, out, is_compact);
  }
}

void body_parser::impl::report_document_error(simdjson::error_code ec, std::string_view body,
                                              std::string_view array, parse_outcome& out) {
  out.request_error = true;
  bool deep = ec == simdjson::DEPTH_ERROR;
  out.reason = deep ? "too_deep" : "invalid_json";
  std::string what = deep ? fmt::format("JSON nested deeper than {} levels", max_depth)
                          : std::string(simdjson::error_message(ec));
  // Slow path, only for bad requests: find the element at fault by parsing the elements
  // one by one, so the 400 names an index and a byte offset.
  slices.clear();
  const char* fail = nullptr;
  bool split = !array.empty() && json_scan::split_array(array, slices, fail);
  for (size_t i = 0; i < slices.size(); ++i) {
    dom::element ignored;
    size_t depth = 0;
    json_scan::skip_value(slices[i].data(), slices[i].data() + slices[i].size(), depth);
    auto eec = deep ? (depth + 1 > max_depth ? simdjson::DEPTH_ERROR : simdjson::SUCCESS)
                    : parse_document(slices[i], copy, ignored);
    if (eec) {
      out.offset = static_cast<uint64_t>(slices[i].data() - body.data());
      out.detail = fmt::format("element {} at byte {}: {}", i, out.offset,
                               deep ? what : std::string(simdjson::error_message(eec)));
      return;
    }
  }
  if (!array.empty() && !split && fail) {
    out.offset = static_cast<uint64_t>(fail - body.data());
    out.detail = fmt::format("malformed array at byte {}: {}", out.offset, what);
    return;
  }
  out.detail = fmt::format("invalid request body: {}", what);
}

void body_parser::impl::parse_ndjson(const route_options& r, std::string_view body, batch_arena& a,
                                     parse_outcome& out) {
  size_t pos = 0;
  size_t line_no = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    size_t end = nl == std::string_view::npos ? body.size() : nl;
    std::string_view line = body.substr(pos, end - pos);
    size_t line_start = pos;
    pos = end + 1;
    ++line_no;
    const char* s = json_scan::skip_ws(line.data(), line.data() + line.size());
    const char* t = line.data() + line.size();
    while (t > s && json_scan::is_ws(t[-1])) --t;
    if (s == t) continue;  // blank lines separate nothing
    std::string_view raw(s, static_cast<size_t>(t - s));
    uint64_t offset = static_cast<uint64_t>(s - body.data());
    (void)line_start;
    if (out.elements == max_messages) return too_many_messages(0, out);
    auto index = static_cast<uint32_t>(out.elements++);
    dom::element el;
    auto ec = parse_document(raw, copy, el);
    if (ec) {
      bool deep = ec == simdjson::DEPTH_ERROR;
      auto detail = fmt::format("line {} (element {}, byte {}): {}", line_no, index, offset,
                                deep ? fmt::format("JSON nested deeper than {} levels", max_depth)
                                     : std::string(simdjson::error_message(ec)));
      reject_element(index, offset, deep ? "too_deep" : "invalid_json", std::move(detail), raw, a,
                     out);
      continue;
    }
    add_element(r, el, raw, offset, a, out);
  }
  if (out.elements == 0) {
    out.request_error = true;
    out.reason = "empty_body";
    out.detail = "the request body has no NDJSON lines";
  }
}

// Parses `text` into `root`. simdjson's DOM refuses numbers it cannot hold (integers past
// 64 bits, doubles past their range) although they are valid JSON: then it parses a copy
// in which they are masked (json_scan::mask_wide_numbers), so the element's bytes, taken
// from `text`, keep them as sent; field_text reads masked numbers from the bytes too.
simdjson::error_code body_parser::impl::parse_document(std::string_view text, bool copy_text,
                                                       dom::element& root) {
  numbers_masked = false;
  auto ec = parser.parse(text.data(), text.size(), copy_text).get(root);
  if (ec != simdjson::NUMBER_ERROR && ec != simdjson::NUMBER_OUT_OF_RANGE) return ec;
  masked.assign(text);
  if (json_scan::mask_wide_numbers(masked) == 0) return ec;
  auto masked_ec = parser.parse(masked.data(), masked.size(), true).get(root);
  if (masked_ec) return ec;
  numbers_masked = true;
  return simdjson::SUCCESS;
}

// A number of the current element (`element_raw`) that the DOM holds masked: its text.
bool body_parser::impl::masked_number_text(const std::string& pointer, std::string_view& out) {
  if (!numbers_masked) return false;
  std::string_view t = json_scan::locate(element_raw, pointer);
  if (!json_scan::is_wide_number(t)) return false;
  out = t;
  return true;
}

bool body_parser::impl::field_text(dom::element el, const std::string& pointer,
                                   std::string_view& out) {
  dom::element v;
  if (el.at_pointer(pointer).get(v)) return false;
  if (v.is_number() && masked_number_text(pointer, out)) return true;
  switch (v.type()) {
    case dom::element_type::STRING:
      out = v.get_string().value_unsafe();
      return true;
    case dom::element_type::INT64:
      scratch = fmt::format("{}", v.get_int64().value_unsafe());
      break;
    case dom::element_type::UINT64:
      scratch = fmt::format("{}", v.get_uint64().value_unsafe());
      break;
    case dom::element_type::DOUBLE:
      scratch = fmt::format("{}", v.get_double().value_unsafe());
      break;
    case dom::element_type::BOOL:
      out = v.get_bool().value_unsafe() ? "true" : "false";
      return true;
    case dom::element_type::NULL_VALUE:
      return false;
    case dom::element_type::ARRAY:
    case dom::element_type::OBJECT:
      scratch = simdjson::minify(v);
      break;
  }
  out = scratch;
  return true;
}

void body_parser::impl::reject_element(uint32_t index, uint64_t offset, std::string_view reason,
                                       std::string detail, std::string_view raw, batch_arena& a,
                                       parse_outcome& out) {
  dead.push_back({index, offset, reason, a.append(detail), a.append(raw)});
  out.errors.push_back(element_error{index, offset, reason, std::move(detail)});
}

void body_parser::impl::add_element(const route_options& r, dom::element el, std::string_view raw,
                                    uint64_t offset, batch_arena& a, parse_outcome& out,
                                    bool compact) {
  auto index = static_cast<uint32_t>(out.elements - 1);
  element_raw = raw;
  size_t mark = a.size();
  size_t attr_mark = attrs.size();
  auto fail = [&](std::string_view reason, std::string detail) {
    a.truncate(mark);
    attrs.resize(attr_mark);
    reject_element(index, offset, reason,
                   fmt::format("element {} at byte {}: {}", index, offset, detail), raw, a, out);
  };
  batch_arena::ref body;
  if (r.strings == string_elements::value && el.is_string())
    body = a.append(el.get_string().value_unsafe());
  else if (compact)
    body = a.append(raw);
  else
    body = a.append_minified(raw);

  for (size_t k = 0; k < r.attributes.size(); ++k) {
    const auto& spec = r.attributes[k];
    std::string_view v;
    if (!field_text(el, spec.field, v)) {
      if (spec.required)
        return fail("missing_field",
                    fmt::format("required field '{}' (attribute {}) is missing or null", spec.field,
                                spec.name));
      continue;
    }
    attrs.push_back({names[k].first, names[k].second, a.append(v)});
  }
  batch_arena::ref ids[2];
  const std::string* id_fields[2] = {&r.group_id_field, &r.dedup_id_field};
  static constexpr std::string_view id_names[2] = {"MessageGroupId", "MessageDeduplicationId"};
  for (int k = 0; k < 2; ++k) {
    if (id_fields[k]->empty()) continue;
    std::string_view v;
    if (!field_text(el, *id_fields[k], v))
      return fail("missing_field",
                  fmt::format("field '{}' ({}) is missing or null", *id_fields[k], id_names[k]));
    if (!valid_fifo_id(v))
      return fail("invalid_id",
                  fmt::format("field '{}' is not a valid {}: 1 to 128 printable ASCII "
                              "characters without spaces",
                              *id_fields[k], id_names[k]));
    ids[k] = a.append(v);
  }

  // Validate with views of the text as it is now (no append until the next element).
  std::string_view body_text = a.view(body);
  check.clear();
  for (size_t k = attr_mark; k < attrs.size(); ++k)
    check.push_back({a.view(attrs[k].name), a.view(attrs[k].type), a.view(attrs[k].value), false});
  if (body_text.empty())
    return fail("empty_body", "the message body is empty; SQS needs at least one character");
  if (!sqs::valid_message_text(body_text)) {
    auto [at, cp] = first_invalid_character(body_text);
    return fail("invalid_characters",
                cp < 0 ? fmt::format("invalid UTF-8 at byte {} of the message", at)
                       : fmt::format("character U+{:04X} at byte {} of the message is not "
                                     "allowed by SQS",
                                     cp, at));
  }
  if (auto err = sqs::validate_attributes(check)) return fail("invalid_attribute", err->message);
  size_t size = sqs::message_size(body_text, check);
  if (size > r.max_message_bytes)
    return fail("too_large", fmt::format("message is {} bytes with its attributes, over the "
                                         "limit of {}",
                                         size, r.max_message_bytes));
  msgs.push_back({index, offset, body, ids[0], ids[1], static_cast<uint32_t>(attr_mark),
                  static_cast<uint32_t>(attrs.size() - attr_mark)});
}

}  // namespace sqsrelay::sources
