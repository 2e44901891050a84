// Reading SendMessageBatch replies: the client's one hot reply (every ten messages). It is
// parsed with simdjson's DOM parser, which validates the whole text as Boost.JSON does but
// reuses its buffers instead of building a Boost.JSON value (a string and an object per
// entry): measured, the Boost.JSON parse was ~7% of `sqsrelay send`'s CPU.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sqs/client.h"

namespace simdjson::dom {
class parser;
}  // namespace simdjson::dom

namespace sqsrelay::sqs {

// Owns a parser and its buffers; not thread-safe (one per sqs::client, used on its executor).
class send_batch_reply_reader {
 public:
  send_batch_reply_reader();
  ~send_batch_reply_reader();
  send_batch_reply_reader(const send_batch_reply_reader&) = delete;
  send_batch_reply_reader& operator=(const send_batch_reply_reader&) = delete;

  // Appends the reply's Successful and Failed lists to `out` as they are, in order, not yet
  // reconciled with the entries sent: elements that are objects only; a field that is
  // missing or not a string reads as empty; SenderFault is true for true or "true". `body`
  // may gain spare capacity (simdjson reads a padding past the end); its text is unchanged.
  // Returns what is wrong when the body is not valid JSON or not an object.
  std::optional<std::string> read(std::string& body, send_batch_result& out);

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
};

}  // namespace sqsrelay::sqs
