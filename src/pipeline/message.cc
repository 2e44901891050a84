#include "pipeline/message.h"

#include <fmt/format.h>

#include "sqs/message.h"

namespace sqsrelay::pipeline {

namespace {

// Views for the sqs:: helpers; at most 10 attributes are valid, more are refused before.
struct attribute_views {
  sqs::attribute_view items[sqs::max_message_attributes];
  size_t n = 0;
};

void fill_views(const outbound_message& m, attribute_views& v) {
  v.n = m.attributes.size();
  for (size_t i = 0; i < v.n; ++i) {
    const auto& a = m.attributes[i];
    v.items[i] = sqs::attribute_view{a.name, a.data_type, a.value, a.binary()};
  }
}

}  // namespace

size_t message_size(const outbound_message& m) {
  size_t n = m.body.size();
  for (const auto& a : m.attributes) n += a.name.size() + a.data_type.size() + a.value.size();
  return n;
}

std::string_view to_string(reject_reason r) {
  switch (r) {
    case reject_reason::oversize: return "oversize";
    case reject_reason::empty_body: return "empty_body";
    case reject_reason::invalid_characters: return "invalid_characters";
    case reject_reason::invalid_attributes: return "invalid_attributes";
    case reject_reason::sender_fault: return "sender_fault";
    case reject_reason::request_rejected: return "request_rejected";
    case reject_reason::retry_limit: return "retry_limit";
    case reject_reason::invalid_input: return "invalid_input";
    case reject_reason::abandoned: return "abandoned";
  }
  return "unknown";
}

std::string_view to_string(outcome::kind k) {
  switch (k) {
    case outcome::kind::delivered: return "delivered";
    case outcome::kind::dead_lettered: return "dead_lettered";
    case outcome::kind::abandoned: return "abandoned";
  }
  return "unknown";
}

std::optional<rejection> check_message(const outbound_message& m, size_t max_message_size) {
  if (m.body.empty())
    return rejection{reject_reason::empty_body, "MissingParameter",
                     "the message body is empty; SQS requires at least one character"};
  if (!sqs::valid_message_text(m.body))
    return rejection{reject_reason::invalid_characters, "InvalidMessageContents",
                     "the body is not UTF-8 or has characters outside SQS's allowed set"};
  if (m.attributes.size() > sqs::max_message_attributes)
    return rejection{reject_reason::invalid_attributes, "InvalidParameterValue",
                     fmt::format("{} message attributes; SQS allows at most {}",
                                 m.attributes.size(), sqs::max_message_attributes)};
  if (!m.attributes.empty()) {
    attribute_views v;
    fill_views(m, v);
    if (auto err = sqs::validate_attributes(std::span(v.items, v.n)))
      return rejection{reject_reason::invalid_attributes, err->type, err->message};
  }
  size_t size = message_size(m);
  if (size > max_message_size)
    return rejection{reject_reason::oversize, "MessageTooLong",
                     fmt::format("message is {} bytes (body plus attributes); the queue's "
                                 "MaximumMessageSize is {}",
                                 size, max_message_size)};
  return std::nullopt;
}

}  // namespace sqsrelay::pipeline
