// The HTTP client pool against the project's HTTP server (and a raw acceptor for peers that
// misbehave) on loopback ports.
#include "http/client.h"

#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/as_tuple.hpp>

#include "http/server.h"

namespace sqsrelay::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct echo_state {
  asio::io_context* ioc = nullptr;
  std::chrono::milliseconds delay{0};
  int requests = 0;
};

// Answers with the method, target, one request header and the body; optionally after a delay.
asio::awaitable<response> echo(echo_state* st, request req) {
  ++st->requests;
  if (st->delay.count() > 0) {
    asio::steady_timer t(*st->ioc, st->delay);
    co_await t.async_wait(asio::use_awaitable);
  }
  response res{boost::beast::http::status::created, 11};
  res.set("X-Echo-Header", std::string(req["X-Test"]));
  res.body() = std::string(req.method_string()) + " " + std::string(req.target()) + " " +
               req.body();
  res.prepare_payload();
  co_return res;
}

class http_client_test : public ::testing::Test {
 protected:
  void SetUp() override {
    st_.ioc = &ioc_;
    srv_ = std::make_unique<server>(
        std::vector<asio::io_context*>{&ioc_}, server_options{},
        [this](request r, peer_info) { return echo(&st_, std::move(r)); },
        [](int s, std::string_view) {
          return response{static_cast<boost::beast::http::status>(s), 11};
        });
    ASSERT_TRUE(srv_->start());
  }
  void TearDown() override {
    client_.reset();
    srv_->stop();
    ioc_.poll();
  }
  client& make(client_options o = {}) {
    client_ = std::move(*client::create(ioc_.get_executor(), o));
    return *client_;
  }

  template <class T>
  T run(asio::awaitable<T> a) {
    std::optional<T> out;
    asio::co_spawn(ioc_, std::move(a), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    while (!out) {
      if (ioc_.stopped()) ioc_.restart();
      ioc_.run_one();
    }
    return std::move(*out);
  }

  asio::io_context ioc_{1};
  echo_state st_;
  std::unique_ptr<server> srv_;
  std::unique_ptr<client> client_;
};

TEST_F(http_client_test, round_trip_and_keep_alive) {
  client& c = make();
  auto id = c.add_origin(origin{false, "127.0.0.1", srv_->port()});
  EXPECT_EQ(c.add_origin(origin{false, "127.0.0.1", srv_->port()}), id);
  outgoing req;
  incoming res;
  for (int i = 0; i < 3; ++i) {
    req.reset("POST", "/path?x=1");
    req.add_header("X-Test", "v" + std::to_string(i));
    req.body = "hello";
    auto r = run(c.execute(id, &req, &res));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(res.status, 201);
    EXPECT_EQ(res.body, "POST /path?x=1 hello");
    EXPECT_EQ(res.header("x-echo-header"), "v" + std::to_string(i));  // case-insensitive
  }
  EXPECT_EQ(c.stats().connections_opened.load(), 1u);
  EXPECT_EQ(c.stats().connections_reused.load(), 2u);
}

TEST_F(http_client_test, request_timeout_names_the_host) {
  st_.delay = 400ms;
  client_options o;
  o.request_timeout = 100ms;
  client& c = make(o);
  auto id = c.add_origin(origin{false, "127.0.0.1", srv_->port()});
  outgoing req;
  req.reset("GET", "/slow");
  incoming res;
  auto r = run(c.execute(id, &req, &res));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, client_errc::request_timeout);
  EXPECT_TRUE(r.error().request_sent);
  EXPECT_NE(r.error().message.find("127.0.0.1:" + std::to_string(srv_->port())),
            std::string::npos)
      << r.error().message;
  EXPECT_EQ(c.stats().timeouts.load(), 1u);
}

TEST_F(http_client_test, waiters_time_out_when_the_pool_is_full) {
  st_.delay = 300ms;
  client_options o;
  o.max_connections_per_origin = 1;
  o.request_timeout = 150ms;
  client& c = make(o);
  auto id = c.add_origin(origin{false, "127.0.0.1", srv_->port()});
  outgoing req;
  req.reset("GET", "/");
  incoming res1, res2;
  std::vector<error_code> codes;
  for (incoming* res : {&res1, &res2}) {
    asio::co_spawn(ioc_, c.execute(id, &req, res),
                   [&](std::exception_ptr, client_result<void> r) {
                     codes.push_back(r ? error_code{} : r.error().code);
                   });
  }
  while (codes.size() < 2) ioc_.run_one();
  auto count = [&](client_errc e) {
    return std::count(codes.begin(), codes.end(), make_error_code(e));
  };
  // The second request waited for the only connection. Both deadlines are 150 ms from
  // (almost) the same start, so which timer fires first is a race: either the waiter times
  // out in the pool while the first request still holds the connection, or the first
  // request times out first, its connection is dropped, and the waiter opens a new one and
  // then times out on the slow server. Both end in a timeout; neither may succeed or hang.
  EXPECT_GE(c.stats().pool_waits.load(), 1u);
  EXPECT_EQ(count(client_errc::request_timeout) + count(client_errc::pool_timeout), 2);
  EXPECT_GE(count(client_errc::request_timeout), 1);
  EXPECT_EQ(c.stats().connections_opened.load(),
            count(client_errc::pool_timeout) == 1 ? 1u : 2u);
}

TEST_F(http_client_test, many_in_flight_over_a_capped_pool) {
  client_options o;
  o.max_connections_per_origin = 4;
  client& c = make(o);
  auto id = c.add_origin(origin{false, "127.0.0.1", srv_->port()});
  const int n = 50;
  std::vector<outgoing> reqs(n);
  std::vector<incoming> res(n);
  int ok = 0, done = 0;
  for (int i = 0; i < n; ++i) {
    reqs[i].reset("PUT", "/" + std::to_string(i));
    asio::co_spawn(ioc_, c.execute(id, &reqs[i], &res[i]),
                   [&, i](std::exception_ptr, client_result<void> r) {
                     ++done;
                     if (r && res[i].body == "PUT /" + std::to_string(i) + " ") ++ok;
                   });
  }
  while (done < n) ioc_.run_one();
  EXPECT_EQ(ok, n);
  EXPECT_LE(c.stats().connections_opened.load(), 4u);
  EXPECT_EQ(st_.requests, n);
}

// A peer that answers one request per connection with keep-alive and then closes: the
// pooled connection is stale when the next request wants it.
asio::awaitable<void> one_shot_server(asio::ip::tcp::acceptor* acc, int* accepted) {
  for (;;) {
    auto [ec, sock] = co_await acc->async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    ++*accepted;
    std::string buf;
    auto [rec, n] = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf), "\r\n\r\n",
                                                    asio::as_tuple(asio::use_awaitable));
    if (rec) continue;
    std::string_view resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    co_await asio::async_write(sock, asio::buffer(resp), asio::as_tuple(asio::use_awaitable));
    boost::system::error_code ignored;
    sock.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    sock.close(ignored);
  }
}

TEST_F(http_client_test, stale_pooled_connections_are_replaced) {
  asio::ip::tcp::acceptor acc(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
  int accepted = 0;
  asio::co_spawn(ioc_, one_shot_server(&acc, &accepted), asio::detached);
  client& c = make();
  auto id = c.add_origin(origin{false, "127.0.0.1", acc.local_endpoint().port()});
  outgoing req;
  req.reset("GET", "/");
  incoming res;
  for (int i = 0; i < 3; ++i) {
    auto r = run(c.execute(id, &req, &res));
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    EXPECT_EQ(res.body, "ok");
    // Let the peer's close arrive before the next request.
    if (ioc_.stopped()) ioc_.restart();
    ioc_.run_for(20ms);
  }
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(c.stats().errors.load(), 0u);
  EXPECT_EQ(c.stats().stale_dropped.load() + c.stats().stale_retries.load(), 2u);
  acc.close();
}

TEST_F(http_client_test, connection_refused) {
  uint16_t port = srv_->port();
  srv_->stop();
  ioc_.poll();
  client& c = make();
  auto id = c.add_origin(origin{false, "127.0.0.1", port});
  outgoing req;
  req.reset("GET", "/");
  incoming res;
  auto r = run(c.execute(id, &req, &res));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, client_errc::connect_failed);
  EXPECT_FALSE(r.error().request_sent);
}

TEST_F(http_client_test, unknown_host_fails_in_dns) {
  client& c = make();
  auto id = c.add_origin(origin{false, "no-such-host.invalid", 80});
  outgoing req;
  req.reset("GET", "/");
  incoming res;
  auto r = run(c.execute(id, &req, &res));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().code == client_errc::resolve_failed ||
              r.error().code == client_errc::resolve_timeout);
  EXPECT_NE(r.error().message.find("no-such-host.invalid"), std::string::npos);
}

TEST_F(http_client_test, missing_ca_file_is_a_setup_error) {
  client_options o;
  o.ca_file = "/nonexistent/ca.pem";
  auto c = client::create(ioc_.get_executor(), o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, client_errc::tls_setup_failed);
  EXPECT_NE(c.error().message.find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(http_origin, parse) {
  auto a = parse_origin("https://SQS.eu-west-1.amazonaws.com/123/q");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->tls);
  EXPECT_EQ(a->host, "sqs.eu-west-1.amazonaws.com");
  EXPECT_EQ(a->port, 443);
  EXPECT_EQ(a->host_header(), "sqs.eu-west-1.amazonaws.com");
  auto b = parse_origin("http://127.0.0.1:9324");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host_header(), "127.0.0.1:9324");
  auto v6 = parse_origin("http://[::1]:8080/");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->host_header(), "[::1]:8080");
  EXPECT_FALSE(parse_origin("ftp://x"));
  EXPECT_FALSE(parse_origin("localhost:9324"));
  EXPECT_FALSE(parse_origin("http://:80"));
  // Hosts that start like an IPv4 address (Boost.URL 1.81 cut them short), ports out of range.
  auto dotted = parse_origin("http://10.1.2.3.sslip.io:4566/000000000000/q");
  ASSERT_TRUE(dotted);
  EXPECT_EQ(dotted->host, "10.1.2.3.sslip.io");
  EXPECT_EQ(dotted->port, 4566);
  auto suffixed = parse_origin("http://127.0.0.1abc:32000");
  ASSERT_TRUE(suffixed);
  EXPECT_EQ(suffixed->host, "127.0.0.1abc");
  EXPECT_EQ(suffixed->port, 32000);
  auto user = parse_origin("https://me@1.2.3.4:5?x=1");
  ASSERT_TRUE(user);
  EXPECT_EQ(user->host_header(), "1.2.3.4:5");
  EXPECT_FALSE(parse_origin("http://localhost:99999"));
  EXPECT_FALSE(parse_origin("http://localhost:0"));
  EXPECT_FALSE(parse_origin("http://localhost:"));
  EXPECT_FALSE(parse_origin("http://[::1"));
}

}  // namespace
}  // namespace sqsrelay::http
