// Fuzzes a JSON-protocol request body the way the server reads it: boost::json with the
// server's depth limit, then the message checks on whatever MessageBody, MessageAttributes,
// MessageSystemAttributes, Entries[*] and MessageAttributeNames the document holds.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "base/hash.h"
#include "sqs/message.h"

namespace json = boost::json;
namespace sqs = sqsrelay::sqs;

namespace {

std::string_view str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view{};
}

// Mirrors the server's parse_attribute_map: views into the document, decoded binary values
// kept alive in `keep`.
void collect_attributes(const json::value* v, std::vector<sqs::attribute_view>& out,
                        std::vector<std::string>& keep) {
  if (!v || !v->is_object()) return;
  keep.reserve(keep.size() + v->get_object().size());
  for (const auto& [name, val] : v->get_object()) {
    if (!val.is_object()) continue;
    const auto& a = val.get_object();
    sqs::attribute_view av;
    av.name = name;
    av.data_type = str(a, "DataType");
    if (a.if_contains("BinaryValue")) {
      std::string decoded;
      if (!sqsrelay::base64_decode(str(a, "BinaryValue"), decoded)) continue;
      keep.push_back(std::move(decoded));
      av.value = keep.back();
      av.binary = true;
    } else {
      av.value = str(a, "StringValue");
    }
    out.push_back(av);
  }
}

void check_message(const json::object& o, const std::vector<std::string_view>& filter) {
  std::string_view body = str(o, "MessageBody");
  (void)sqs::valid_message_text(body);
  (void)sqs::valid_batch_entry_id(str(o, "Id"));
  for (std::string_view key : {"MessageAttributes", "MessageSystemAttributes"}) {
    std::vector<sqs::attribute_view> attrs;
    std::vector<std::string> keep;
    collect_attributes(o.if_contains(key), attrs, keep);
    (void)sqs::validate_attributes(attrs);
    (void)sqs::message_size(body, attrs);
    (void)sqs::md5_of_attributes(attrs);
    for (const auto& a : attrs) (void)sqs::attribute_name_selected(a.name, filter);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json::parse_options po;
  po.max_depth = 64;  // server::frontend_options::json_max_depth
  json::monotonic_resource mr;
  boost::system::error_code ec;
  json::value v =
      json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec, &mr, po);
  if (ec || !v.is_object()) return 0;
  const auto& o = v.get_object();
  std::vector<std::string_view> filter;
  if (auto* names = o.if_contains("MessageAttributeNames"); names && names->is_array())
    for (const auto& n : names->get_array())
      if (n.is_string()) filter.emplace_back(n.get_string());
  check_message(o, filter);
  if (auto* entries = o.if_contains("Entries"); entries && entries->is_array())
    for (const auto& e : entries->get_array())
      if (e.is_object()) check_message(e.get_object(), filter);
  return 0;
}
