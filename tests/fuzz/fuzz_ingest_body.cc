// The HTTP ingest body parser on arbitrary bytes, in each format and with attribute, group
// and records-field extraction configured: it must answer (a request error, or messages and
// element errors, never more than the elements seen) without crashing, and every message it
// accepts must be valid SQS text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sources/http_ingest/body_parser.h"
#include "sqs/message.h"

using namespace sqsrelay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static sources::body_parser parser(16);
  sources::route_options route;
  uint8_t mode = data[0];
  switch (mode % 4) {
    case 0: route.format = sources::body_format::json; break;
    case 1: route.format = sources::body_format::ndjson; break;
    case 2: route.format = sources::body_format::auto_detect; break;
    default:
      route.format = sources::body_format::json;
      route.records_field = "/data";
      break;
  }
  if (mode & 4) route.attributes.push_back({"/ident", "device", "String", false});
  if (mode & 8) route.attributes.push_back({"/speed", "speed", "Number", (mode & 16) != 0});
  if (mode & 32) route.on_invalid = sources::invalid_policy::dead_letter;
  route.max_message_bytes = (mode & 64) ? 64 : 1048576;
  route.strings = (mode & 128) ? sources::string_elements::json : sources::string_elements::value;
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto out = parser.parse(route, (mode & 1) ? "application/x-ndjson" : "application/json", body);
  if (out.request_error) return 0;
  if (out.batch.messages().size() > out.elements || out.errors.size() > out.elements)
    std::abort();
  for (const auto& m : out.batch.messages())
    if (!sqs::valid_message_text(m.body) || m.body.empty()) std::abort();
  return 0;
}
