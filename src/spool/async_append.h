// Appending to the spool from an Asio coroutine (or any completion token): completes on the
// handler's associated executor with (error_code, first_seq) once the records are durable,
// or at once with spool_full / record_too_large / spool_failed.
//
//   auto [ec, first_seq] = co_await spool::async_append(s, records);
//
// `records` is copied before the initiation returns. The completion is posted, so it never
// runs on the log's sync thread.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <span>
#include <string_view>

#include "spool/spool.h"

namespace sqsrelay::spool {

// Completes with std::tuple<error_code, uint64_t> by default (no exceptions on the data path).
template <class Token = boost::asio::as_tuple_t<boost::asio::use_awaitable_t<>>>
auto async_append(spool& s, std::span<const std::string_view> records, Token token = {}) {
  return boost::asio::async_initiate<Token, void(error_code, uint64_t)>(
      [&s, records](auto handler) {
        auto ex = boost::asio::get_associated_executor(handler);
        s.append(records, [h = std::move(handler), ex](error_code ec, uint64_t seq) mutable {
          boost::asio::post(ex, [h = std::move(h), ec, seq]() mutable { std::move(h)(ec, seq); });
        });
      },
      token);
}

}  // namespace sqsrelay::spool
