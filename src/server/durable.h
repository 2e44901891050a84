// Awaiting WAL durability from a coroutine: completes on the awaiting coroutine's executor
// once every record up to `lsn` is fdatasync'd (or with the sync error).
#pragma once

#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/result.h"
#include "wal/log.h"

namespace sqsrelay::server {

// Completes with std::tuple<error_code> by default (no exceptions on the data path).
template <class Token = boost::asio::as_tuple_t<boost::asio::use_awaitable_t<>>>
auto async_wait_durable(wal::log& log, uint64_t lsn, Token token = {}) {
  return boost::asio::async_initiate<Token, void(error_code)>(
      [&log, lsn](auto handler) {
        auto ex = boost::asio::get_associated_executor(handler);
        log.when_durable(lsn, [h = std::move(handler), ex](error_code ec) mutable {
          boost::asio::post(ex, [h = std::move(h), ec]() mutable { std::move(h)(ec); });
        });
      },
      token);
}

}  // namespace sqsrelay::server
