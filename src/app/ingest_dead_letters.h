// Dead letters of an ingest request: its invalid elements (routes with on_invalid =
// dead_letter) and messages the destination refused, written to the dead-letter sink and
// awaited until durable, so the request's 200 covers them too.
#pragma once

#include <vector>

#include <boost/asio/awaitable.hpp>

#include "base/result.h"
#include "pipeline/dead_letter.h"
#include "sources/http_ingest/ingest_types.h"

namespace sqsrelay::app {

struct refused_message {
  size_t index = 0;  // into batch->messages()
  std::string code;
  std::string message;
};

// Number of records write_ingest_dead_letters() writes for these inputs.
inline size_t count_dead_letters(const sources::ingest_batch& batch,
                                 const std::vector<refused_message>& refused) {
  return batch.dead_letters().size() + refused.size();
}

// `batch` must stay alive until the awaitable completes (it is the caller's local).
boost::asio::awaitable<error_code> write_ingest_dead_letters(
    pipeline::dead_letter_sink& sink, std::string queue, const sources::ingest_batch* batch,
    std::vector<refused_message> refused);

}  // namespace sqsrelay::app
