#include "app/ingest_dead_letters.h"

#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace sqsrelay::app {

namespace asio = boost::asio;

namespace {

using awaitable_token = asio::as_tuple_t<asio::use_awaitable_t<>>;

auto async_write(pipeline::dead_letter_sink& sink,
                 std::vector<pipeline::dead_letter_record> records) {
  return asio::async_initiate<const awaitable_token, void(error_code)>(
      [&sink](auto handler, std::vector<pipeline::dead_letter_record> recs) {
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        sink.write(std::move(recs), [h, ex](error_code ec) {
          asio::post(ex, [h, ec]() mutable { std::move(*h)(ec); });
        });
      },
      awaitable_token{}, std::move(records));
}

pipeline::reject_reason reason_of(std::string_view code) {
  if (code == "too_large") return pipeline::reject_reason::oversize;
  if (code == "invalid_characters") return pipeline::reject_reason::invalid_characters;
  if (code == "empty_body") return pipeline::reject_reason::empty_body;
  if (code == "invalid_json" || code == "too_deep") return pipeline::reject_reason::invalid_input;
  return pipeline::reject_reason::invalid_attributes;
}

}  // namespace

asio::awaitable<error_code> write_ingest_dead_letters(pipeline::dead_letter_sink& sink,
                                                      std::string queue,
                                                      const sources::ingest_batch* batch,
                                                      std::vector<refused_message> refused) {
  size_t n = count_dead_letters(*batch, refused);
  if (n == 0) co_return error_code{};
  // The records point into these until the write completes.
  std::vector<pipeline::outbound_message> bodies(n);
  std::vector<pipeline::rejection> reasons(n);
  std::vector<pipeline::dead_letter_record> records(n);
  size_t k = 0;
  for (const auto& d : batch->dead_letters()) {
    bodies[k].body = std::string(d.raw);
    // The parser's detail already names the element and its byte (and line, for NDJSON).
    reasons[k] = {reason_of(d.reason), std::string(d.reason), std::string(d.detail)};
    ++k;
  }
  for (auto& r : refused) {
    const auto& m = batch->messages()[r.index];
    bodies[k].body = std::string(m.body);
    for (const auto& a : m.attributes)
      bodies[k].attributes.push_back(
          {std::string(a.name), std::string(a.data_type), std::string(a.value)});
    bodies[k].group_id = std::string(m.group_id);
    bodies[k].dedup_id = std::string(m.dedup_id);
    reasons[k] = {pipeline::reject_reason::sender_fault, std::move(r.code),
                  fmt::format("element {}: {}", m.index, r.message)};
    ++k;
  }
  for (size_t i = 0; i < n; ++i) records[i] = {queue, &bodies[i], &reasons[i], 0};
  auto [ec] = co_await async_write(sink, std::move(records));
  co_return ec;
}

}  // namespace sqsrelay::app
