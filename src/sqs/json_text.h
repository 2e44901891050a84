// Writing JSON text directly into a string, for the hot responses (SendMessageBatch,
// ReceiveMessage, DeleteMessageBatch): building a boost::json::object first costs an
// allocation per member. Boost.JSON has no streaming writer in 1.81, hence this.
#pragma once

#include <string>
#include <string_view>

namespace sqsrelay::sqs {

// Appends `s` as a JSON string literal (quotes included). `s` must be valid UTF-8; control
// characters, '"' and '\\' are escaped as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view s);

// Appends `"key":` then the string value.
inline void append_json_member(std::string& out, std::string_view key, std::string_view value) {
  append_json_string(out, key);
  out.push_back(':');
  append_json_string(out, value);
}

}  // namespace sqsrelay::sqs
