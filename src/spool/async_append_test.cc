#include "spool/async_append.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "spool/test_util.h"
#include "wal/fault_env.h"

namespace sqsrelay::spool {
namespace {

namespace asio = boost::asio;

asio::awaitable<void> append_two(spool* s, std::thread::id io_thread, int* done) {
  const std::vector<std::string_view> recs{"a", "b"};
  auto [ec, seq] = co_await async_append(*s, recs);
  EXPECT_FALSE(ec);
  EXPECT_EQ(seq, 1u);
  EXPECT_EQ(std::this_thread::get_id(), io_thread);  // resumed on the coroutine's executor
  const std::vector<std::string_view> big{std::string_view("0123456789")};
  auto [ec2, seq2] = co_await async_append(*s, big);
  EXPECT_EQ(ec2, errc::record_too_large);
  EXPECT_EQ(seq2, 0u);
  ++*done;
}

TEST(spool_async, append_completes_on_the_awaiting_executor) {
  wal::fault_env env;
  options o;
  o.dir = "/spool";
  o.max_append_bytes = 12;
  auto s = spool::open(o, env);
  ASSERT_TRUE(s.has_value());
  asio::io_context io;
  int done = 0;
  asio::co_spawn(io, append_two(s->get(), std::this_thread::get_id(), &done), asio::detached);
  io.run();
  EXPECT_EQ(done, 1);
  EXPECT_EQ(testing::read_all(**s).size(), 2u);
}

}  // namespace
}  // namespace sqsrelay::spool
