#include "sqs/send_batch_reply.h"

#include <simdjson.h>

#include <string_view>

namespace sqsrelay::sqs {

namespace {

namespace dom = simdjson::dom;

std::string str_of(dom::object o, std::string_view key) {
  std::string_view v;
  if (o[key].get_string().get(v) != simdjson::SUCCESS) return {};
  return std::string(v);
}

bool bool_of(dom::object o, std::string_view key) {
  dom::element e;
  if (o[key].get(e) != simdjson::SUCCESS) return false;
  bool b = false;
  if (e.get_bool().get(b) == simdjson::SUCCESS) return b;
  std::string_view s;
  return e.get_string().get(s) == simdjson::SUCCESS && s == "true";
}

// The elements of o[key] that are objects; none when it is missing or not an array.
template <class F>
void for_each_object(dom::object o, std::string_view key, F f) {
  dom::array a;
  if (o[key].get_array().get(a) != simdjson::SUCCESS) return;
  for (dom::element e : a) {
    dom::object eo;
    if (e.get_object().get(eo) == simdjson::SUCCESS) f(eo);
  }
}

}  // namespace

send_batch_reply_reader::send_batch_reply_reader() : parser_(std::make_unique<dom::parser>()) {}

send_batch_reply_reader::~send_batch_reply_reader() = default;

std::optional<std::string> send_batch_reply_reader::read(std::string& body,
                                                         send_batch_result& out) {
  // Spare capacity for the padding, so simdjson parses in place instead of copying.
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  dom::element root;
  if (auto err = parser_->parse(body).get(root); err != simdjson::SUCCESS)
    return std::string("the response is not valid JSON (") + simdjson::error_message(err) + ")";
  dom::object o;
  if (root.get_object().get(o) != simdjson::SUCCESS) return "the response is not a JSON object";
  for_each_object(o, "Failed", [&](dom::object f) {
    out.failed.push_back(batch_failure{str_of(f, "Id"), str_of(f, "Code"), str_of(f, "Message"),
                                       bool_of(f, "SenderFault")});
  });
  out.successful.reserve(out.successful.size() + max_batch_entries);  // what a reply holds
  for_each_object(o, "Successful", [&](dom::object s) {
    out.successful.push_back(batch_success{str_of(s, "Id"), str_of(s, "MessageId"),
                                           str_of(s, "MD5OfMessageBody"),
                                           str_of(s, "SequenceNumber")});
  });
  return std::nullopt;
}

}  // namespace sqsrelay::sqs
