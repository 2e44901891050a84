// Turns one request body into an ingest_batch: splits it into elements (JSON array, NDJSON
// lines, a single value, or the array at a configured field of an object), takes each
// element's compact JSON text as the message body, extracts attributes and FIFO ids from
// configured fields, and validates each message as SQS would (character set, size with
// attributes, attribute values). simdjson's DOM parser validates the whole document (and
// bounds its depth); a small structural scanner finds each element's bytes, which
// simdjson::minify compacts.
//
// Not thread-safe: one body_parser per thread at a time (it reuses the simdjson parser's
// buffers across requests, which is what makes small requests cheap).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sources/http_ingest/ingest_types.h"

namespace sqsrelay::sources {

// An element that failed validation, for the 400 body or the 200 report.
struct element_error {
  uint32_t index = 0;
  uint64_t offset = 0;      // byte offset of the element in the body
  std::string_view reason;  // stable code: see docs/ingest.md
  std::string detail;       // what and where, for humans
};

struct parse_outcome {
  // Whole-request failure (syntax error in a JSON document, nesting too deep, no array at
  // records_field, empty body): nothing is stored, the request gets a 400.
  bool request_error = false;
  std::string_view reason;
  std::string detail;
  uint64_t offset = 0;

  size_t elements = 0;                // elements seen (valid + invalid)
  std::vector<element_error> errors;  // invalid elements, in order
  ingest_batch batch;                 // valid messages; invalid ones as dead letters
};

// Canonical JSON Pointer for a configured field: "/a/b" stays, "ident" (one key, which may
// contain dots, as flespi's "position.latitude" does) becomes "/ident" with ~ and /
// escaped. Empty stays empty.
std::string field_pointer(std::string_view field);

// Effective format for a request (auto-detection by Content-Type).
body_format detect_format(body_format configured, std::string_view content_type);

class body_parser {
 public:
  // `max_depth`: the deepest nesting accepted in a JSON document (a body, or one NDJSON
  // line), counting the outer array.
  // `max_messages`: the most elements one body may hold (request error "too_many_messages"
  // beyond).
  explicit body_parser(size_t max_depth, size_t max_messages = 100000);
  ~body_parser();
  body_parser(const body_parser&) = delete;
  body_parser& operator=(const body_parser&) = delete;

  // `body` is not changed (simdjson parses it in place when its capacity has room for the
  // padding, else a copy in the parser's own buffer). `route.attributes[].field`, `group_id_field`,
  // `dedup_id_field` and `records_field` must be canonical pointers (field_pointer).
  parse_outcome parse(const route_options& route, std::string_view content_type, std::string& body);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sqsrelay::sources
