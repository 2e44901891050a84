// The ingest source inside the real HTTP server on a loopback port, with a fake sink that
// can be durable, slow, full or failing; requests come from a blocking Beast client.
#include "sources/http_ingest/http_ingest.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace sqsrelay::sources {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct recorded {
  ingest_target target;
  std::vector<std::string> bodies;
  std::vector<std::vector<std::string>> attributes;  // "name=type:value"
  std::vector<std::string> dead;                     // raw bytes of dead letters
  std::chrono::steady_clock::time_point durable_at;
};

class fake_sink final : public ingest_sink {
 public:
  enum class mode { durable, slow, full, failing, no_queue, first_undelivered };
  std::atomic<mode> how{mode::durable};

  asio::awaitable<submit_result> async_submit(ingest_target target, ingest_batch batch) override {
    calls += 1;
    if (how == mode::slow) {
      auto ex = co_await asio::this_coro::executor;
      asio::steady_timer timer(ex, 300ms);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (how == mode::full) co_return submit_result::retry_later(2s, "spool full");
    if (how == mode::failing) co_return submit_result::failed("disk error");
    if (how == mode::no_queue) co_return submit_result::refused(404, "queue 'q' does not exist");
    recorded r{std::move(target), {}, {}, {}, std::chrono::steady_clock::now()};
    for (const auto& m : batch.messages()) {
      r.bodies.emplace_back(m.body);
      auto& attrs = r.attributes.emplace_back();
      for (const auto& a : m.attributes)
        attrs.push_back(std::string(a.name) + "=" + std::string(a.data_type) + ":" +
                        std::string(a.value));
      if (!m.group_id.empty()) attrs.push_back("group=" + std::string(m.group_id));
    }
    for (const auto& d : batch.dead_letters()) r.dead.emplace_back(d.raw);
    auto result = submit_result::accepted();
    if (how == mode::first_undelivered && !batch.messages().empty()) {
      const auto& m = batch.messages().front();
      result.undelivered.push_back({m.index, m.offset, "MessageTooLong", "too long for q"});
    }
    std::lock_guard lock(mu);
    got.push_back(std::move(r));
    co_return result;
  }

  std::vector<recorded> taken() {
    std::lock_guard lock(mu);
    return got;
  }
  std::atomic<int> calls{0};

 private:
  std::mutex mu;
  std::vector<recorded> got;
};

struct reply {
  int status = 0;
  std::string body;
  std::string retry_after;
  std::string allow;
  std::chrono::steady_clock::time_point at;
};

class IngestServer : public ::testing::Test {
 protected:
  void start(ingest_options o) {
    std::string err;
    ingest_ = http_ingest::make(std::move(o), sink_, err);
    ASSERT_TRUE(ingest_) << err;
    server_ = std::make_unique<http::server>(
        std::vector<asio::io_context*>{&ioc_}, ingest_->server_options("127.0.0.1", 0),
        [this](http::request r, http::peer_info p) { return ingest_->handle(std::move(r), p); },
        [this](int s, std::string_view why) { return ingest_->transport_error(s, why); });
    ASSERT_TRUE(server_->start());
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    if (server_) asio::post(ioc_, [this] { server_->stop(); });
    guard_.reset();
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  reply send(bhttp::verb verb, std::string target, std::string body,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, "localhost");
    req.set(bhttp::field::content_type, "application/json");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    bhttp::write(s, req);
    return read_reply(s);
  }
  reply post(std::string target, std::string body,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    return send(bhttp::verb::post, std::move(target), std::move(body), std::move(headers));
  }
  // Sends only the request header (announcing `length` body bytes) and reads the answer:
  // what the header check refuses must be answered without the body.
  reply header_only(std::string target, size_t length, std::string extra = {}) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    std::string head = "POST " + target +
                       " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) +
                       "\r\n" + extra + "\r\n";
    asio::write(s, asio::buffer(head));
    return read_reply(s);
  }
  static reply read_reply(tcp::socket& s) {
    boost::beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    boost::system::error_code ec;
    bhttp::read(s, buf, res, ec);
    reply r;
    if (ec) return r;
    r.status = res.result_int();
    r.body = res.body();
    r.retry_after = std::string(res[bhttp::field::retry_after]);
    r.allow = std::string(res[bhttp::field::allow]);
    r.at = std::chrono::steady_clock::now();
    return r;
  }

  asio::io_context ioc_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(ioc_);
  fake_sink sink_;
  std::unique_ptr<http_ingest> ingest_;
  std::unique_ptr<http::server> server_;
  std::thread thread_;
};

TEST_F(IngestServer, ArrayPostedToAQueueIsAcceptedOnceDurable) {
  start({});
  auto r = post("/queues/orders/messages", R"([{"id": 1}, {"id": 2}, "three"])");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":3})");
  auto got = sink_.taken();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target.queue, "orders");
  EXPECT_EQ(got[0].target.route, "/queues/{name}/messages");
  EXPECT_EQ(got[0].bodies, (std::vector<std::string>{R"({"id":1})", R"({"id":2})", "three"}));
  EXPECT_EQ(ingest_->probe().accepted(), 3u);
  EXPECT_EQ(ingest_->probe().responses(200), 1u);
}

TEST_F(IngestServer, SlowSinkDelaysThe200UntilDurable) {
  start({});
  sink_.how = fake_sink::mode::slow;
  auto t0 = std::chrono::steady_clock::now();
  auto r = post("/queues/q/messages", "[1]");
  EXPECT_EQ(r.status, 200);
  auto got = sink_.taken();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GE(r.at - t0, 300ms);
  EXPECT_LE(got[0].durable_at, r.at);
}

TEST_F(IngestServer, FullSinkAnswers503WithRetryAfterAndFailingSink500) {
  start({});
  sink_.how = fake_sink::mode::full;
  auto r = post("/queues/q/messages", "[1, 2]");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after, "2");
  EXPECT_NE(r.body.find("spool full"), std::string::npos);
  sink_.how = fake_sink::mode::failing;
  r = post("/queues/q/messages", "[1, 2]");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("disk error"), std::string::npos);
  sink_.how = fake_sink::mode::no_queue;
  r = post("/queues/q/messages", "[1, 2]");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("does not exist"), std::string::npos);
  EXPECT_EQ(ingest_->probe().sink_refusals(), 1u);
  EXPECT_EQ(ingest_->probe().accepted(), 0u);
  EXPECT_EQ(ingest_->probe().sink_retries(), 1u);
  EXPECT_EQ(ingest_->probe().sink_errors(), 1u);
}

ingest_options flespi_options() {
  ingest_options o;
  route_options r;
  r.path = "/flespi";
  r.queue = "telemetry";
  r.attributes = {{"ident", "ident", "String", true}, {"position.speed", "speed", "Number", false}};
  o.routes.push_back(r);
  o.tokens = {"flespi-token-1", "flespi-token-2"};
  o.token_header = "X-Ingest-Token";
  return o;
}

TEST_F(IngestServer, FlespiRouteWithTokenAndAttributes) {
  start(flespi_options());
  std::string body =
      R"([{"ident":"352093081452251","position.speed":42,"timestamp":1702366832.9}])";
  auto r = post("/flespi", body);
  EXPECT_EQ(r.status, 401);
  r = post("/flespi", body, {{"X-Ingest-Token", "flespi-token-3"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(ingest_->probe().denied_count(ingest_probe::auth_failure::token), 2u);
  EXPECT_EQ(sink_.calls, 0);
  r = post("/flespi", body, {{"X-Ingest-Token", "flespi-token-2"}});
  EXPECT_EQ(r.status, 200) << r.body;
  auto got = sink_.taken();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target.queue, "telemetry");
  EXPECT_EQ(got[0].target.route, "/flespi");
  EXPECT_EQ(got[0].attributes[0],
            (std::vector<std::string>{"ident=String:352093081452251", "speed=Number:42"}));
  // The token is checked on the header, before the body is read.
  r = header_only("/flespi", 100000);
  EXPECT_EQ(r.status, 401);
  // The built-in route needs the token too.
  r = post("/queues/q/messages", "[1]");
  EXPECT_EQ(r.status, 401);
}

TEST_F(IngestServer, RejectPolicyAnswers400NamingIndexOffsetAndReason) {
  ingest_options o;
  o.queue_route_defaults.max_message_bytes = 10;
  start(o);
  auto r = post("/queues/q/messages", R"(["ok", "far too long for ten", "ok2"])");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"("error":"invalid_elements")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"index":1,"offset":7,"reason":"too_large")"), std::string::npos)
      << r.body;
  EXPECT_EQ(sink_.calls, 0);
  EXPECT_EQ(ingest_->probe().invalid_count("too_large"), 1u);
}

TEST_F(IngestServer, DeadLetterPolicyStoresTheRestAndReportsPerIndex) {
  ingest_options o;
  o.queue_route_defaults.max_message_bytes = 10;
  o.queue_route_defaults.on_invalid = invalid_policy::dead_letter;
  start(o);
  auto r = post("/queues/q/messages", R"(["ok", "far too long for ten", "ok2"])");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("accepted":2,"dead_lettered":1,"errors":[{"index":1)"),
            std::string::npos)
      << r.body;
  auto got = sink_.taken();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bodies, (std::vector<std::string>{"ok", "ok2"}));
  EXPECT_EQ(got[0].dead, (std::vector<std::string>{R"("far too long for ten")"}));
  EXPECT_EQ(ingest_->probe().dead_lettered(), 1u);
}

// ack = delivered: a message the sink dead-lettered instead of delivering is never hidden
// behind a plain 200.
TEST_F(IngestServer, UndeliveredMessagesAre502OrListedInTheReport) {
  ingest_options o;
  route_options strict;
  strict.path = "/strict";
  strict.queue = "q";
  strict.ack = ack_mode::delivered;
  route_options lenient = strict;
  lenient.path = "/lenient";
  lenient.on_invalid = invalid_policy::dead_letter;
  o.routes = {strict, lenient};
  start(o);
  sink_.how = fake_sink::mode::first_undelivered;
  auto r = post("/strict", R"(["big", "ok"])");
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find(R"("error":"not_delivered")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("delivered":1,"dead_lettered":1,"errors":[{"index":0,"offset":1,)"
                        R"("reason":"not_delivered","message":"element 0 at byte 1: not )"
                        R"(delivered, dead-lettered: MessageTooLong: too long for q"}])"),
            std::string::npos)
      << r.body;
  // With on_invalid = dead_letter: a 200 whose report merges invalid and undelivered
  // elements in index order.
  r = post("/lenient", R"(["big", "", "ok"])");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"({"accepted":1,"dead_lettered":2,"errors":[{"index":0,"offset":1,)"
                        R"("reason":"not_delivered")"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"({"index":1,"offset":8,"reason":"empty_body")"), std::string::npos)
      << r.body;
  EXPECT_EQ(ingest_->probe().undelivered(), 2u);
  EXPECT_EQ(ingest_->probe().accepted(), 1u);
  EXPECT_EQ(ingest_->probe().responses(502), 1u);
  // Everything delivered: the plain 200.
  sink_.how = fake_sink::mode::durable;
  r = post("/strict", R"(["a"])");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1})");
}

TEST_F(IngestServer, SyntaxErrorIs400WithOffsetAndNothingStored) {
  start({});
  auto r = post("/queues/q/messages", R"([{"a":1}, {"a":}])");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find(R"("error":"invalid_json")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("offset":10)"), std::string::npos) << r.body;
  EXPECT_EQ(sink_.calls, 0);
}

TEST_F(IngestServer, BodyLimitIs413BeforeReadingTheBody) {
  ingest_options o;
  o.max_body_bytes = 1000;
  o.max_inflight_bytes = 1000;
  start(o);
  auto r = header_only("/queues/q/messages", 5000);
  EXPECT_EQ(r.status, 413);
  // Beast's parser already refuses the announced length while reading the header.
  EXPECT_NE(r.body.find(R"("error":"too_large")"), std::string::npos) << r.body;
  EXPECT_EQ(ingest_->probe().responses(413), 1u);
}

TEST_F(IngestServer, ExpectContinueGetsAnInterimAnswerBeforeTheBody) {
  start({});
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  std::string head =
      "POST /queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n";
  asio::write(s, asio::buffer(head));
  std::string interim;
  asio::read_until(s, asio::dynamic_buffer(interim), "\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  asio::write(s, asio::buffer(std::string_view("[1,2]")));
  auto r = read_reply(s);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":2})");
}

TEST_F(IngestServer, InflightBytesBudgetAnswers503) {
  ingest_options o;
  o.max_body_bytes = 1000;
  o.max_inflight_bytes = 1000;
  start(o);
  sink_.how = fake_sink::mode::slow;
  std::string body = "[\"" + std::string(700, 'x') + "\"]";
  reply first;
  std::thread t([&] { first = post("/queues/q/messages", body); });
  // Wait until the first request holds its bytes.
  for (int i = 0; i < 200 && ingest_->inflight_bytes() == 0; ++i) std::this_thread::sleep_for(2ms);
  ASSERT_GT(ingest_->inflight_bytes(), 0u);
  auto second = post("/queues/q/messages", body);
  t.join();
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(second.status, 503);
  EXPECT_EQ(second.retry_after, "1");
  EXPECT_EQ(ingest_->probe().inflight_rejections(), 1u);
  // The server releases a request's bytes when its handling ends, which may be just after
  // the client has read the reply.
  for (int i = 0; i < 1000 && ingest_->inflight_bytes() != 0; ++i)
    std::this_thread::sleep_for(2ms);
  EXPECT_EQ(ingest_->inflight_bytes(), 0u);
  // With the budget free again the same request goes through.
  EXPECT_EQ(post("/queues/q/messages", body).status, 200);
}

TEST_F(IngestServer, AllowlistAndForwardedForFromTrustedProxies) {
  ingest_options o;
  o.allow_cidrs = {"10.0.0.0/8"};
  start(o);
  auto r = post("/queues/q/messages", "[1]");
  EXPECT_EQ(r.status, 403);
  // The peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is ignored.
  r = post("/queues/q/messages", "[1]", {{"X-Forwarded-For", "10.1.2.3"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(ingest_->probe().denied_count(ingest_probe::auth_failure::address), 2u);
  EXPECT_EQ(sink_.calls, 0);
}

TEST_F(IngestServer, ForwardedForHonouredFromATrustedProxy) {
  ingest_options o;
  o.allow_cidrs = {"10.0.0.0/8"};
  o.trusted_proxies = {"127.0.0.1/32"};
  start(o);
  EXPECT_EQ(post("/queues/q/messages", "[1]", {{"X-Forwarded-For", "10.1.2.3"}}).status, 200);
  EXPECT_EQ(post("/queues/q/messages", "[1]", {{"X-Forwarded-For", "192.0.2.1"}}).status, 403);
  EXPECT_EQ(post("/queues/q/messages", "[1]", {{"X-Forwarded-For", "junk"}}).status, 400);
  EXPECT_EQ(post("/queues/q/messages", "[1]").status, 403);  // the proxy itself
}

TEST_F(IngestServer, HealthzNotFoundAndMethods) {
  start(flespi_options());
  auto r = send(bhttp::verb::get, "/healthz", "");
  EXPECT_EQ(r.status, 200);  // no token needed
  EXPECT_EQ(r.body, R"({"status":"ok"})");
  ingest_->set_healthy(false);
  EXPECT_EQ(send(bhttp::verb::get, "/healthz", "").status, 503);
  std::vector<std::pair<std::string, std::string>> tok{{"X-Ingest-Token", "flespi-token-1"}};
  EXPECT_EQ(post("/nowhere", "[1]", tok).status, 404);
  EXPECT_EQ(send(bhttp::verb::get, "/flespi", "", tok).status, 405);
  EXPECT_EQ(post("/queues/bad%20name/messages", "[1]", tok).status, 404);
  auto fifo = post("/queues/q.fifo/messages", "[1]", tok);
  EXPECT_EQ(fifo.status, 400);
  EXPECT_NE(fifo.body.find("group_id_field"), std::string::npos);
}

TEST_F(IngestServer, HeadHealthzHasNoBodyAndOtherMethodsAreTold) {
  start({});
  // HEAD then GET on one keep-alive connection: the GET's answer must follow the HEAD's
  // header directly.
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  asio::write(s, asio::buffer(std::string("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                          "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (got.find("{\"status\":\"ok\"}", got.find("\r\n\r\nHTTP/1.1")) == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    boost::system::error_code ec;
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    got.append(buf, n);
  }
  const size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << got;
  EXPECT_EQ(got.substr(0, 15), "HTTP/1.1 200 OK") << got;
  EXPECT_EQ(got.substr(head_end + 4, 15), "HTTP/1.1 200 OK") << got;
  auto r = post("/healthz", "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, HEAD");
}

TEST_F(IngestServer, ConfiguredRetryAfterIsTheFloorOfTheSinksHint) {
  ingest_options o;
  o.retry_after = 7s;
  start(o);
  sink_.how = fake_sink::mode::full;  // the sink asks for 2 s
  auto r = post("/queues/q/messages", "[1]");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.retry_after, "7");
}

TEST_F(IngestServer, MetricsText) {
  start({});
  post("/queues/q/messages", "[1, 2]");
  post("/queues/q/messages", "[");
  auto text = ingest_->metrics_text();
  EXPECT_NE(text.find("sqsrelay_ingest_requests_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("sqsrelay_ingest_messages_accepted_total 2\n"), std::string::npos);
  EXPECT_NE(text.find("sqsrelay_ingest_responses_total{code=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("sqsrelay_ingest_invalid_total{reason=\"invalid_json\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE sqsrelay_ingest_inflight_bytes gauge"), std::string::npos);
}

// sqsrelay run with several listeners: one exposition, valid for Prometheus (each family's
// HELP/TYPE once), each sample labelled with its listener's name.
TEST_F(IngestServer, MetricsOfSeveralListenersShareFamiliesAndCarryTheirName) {
  start({});
  post("/queues/q/messages", "[1, 2]");
  std::string err;
  auto other = http_ingest::make({}, sink_, err);
  ASSERT_TRUE(other) << err;
  // The request's bytes are released just after its answer is written.
  for (int i = 0; i < 5000 && ingest_->inflight_bytes() != 0; ++i) std::this_thread::sleep_for(1ms);
  const std::vector<std::pair<std::string, const http_ingest*>> listeners = {
      {"flespi", ingest_.get()}, {"odd \"name\"", other.get()}};
  const std::string text = http_ingest::metrics_text(listeners);
  std::map<std::string, int> types;
  size_t at = 0;
  while ((at = text.find("# TYPE ", at)) != std::string::npos) {
    at += 7;
    types[text.substr(at, text.find(' ', at) - at)] += 1;
  }
  EXPECT_GE(types.size(), 10u);
  for (const auto& [family, n] : types) EXPECT_EQ(n, 1) << family;
  EXPECT_NE(text.find("\nsqsrelay_ingest_requests_total{listener=\"flespi\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nsqsrelay_ingest_requests_total{listener=\"odd \\\"name\\\"\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nsqsrelay_ingest_responses_total{listener=\"flespi\",code=\"200\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nsqsrelay_ingest_inflight_bytes{listener=\"flespi\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\nsqsrelay_ingest_requests_total "), std::string::npos) << "unlabelled";
}

TEST(IngestOptions, BadOptionsAreClearErrors) {
  fake_sink sink;
  std::string err;
  auto route = [](std::string path, std::string queue) {
    route_options r;
    r.path = std::move(path);
    r.queue = std::move(queue);
    return r;
  };
  auto with_route = [](route_options r) {
    ingest_options o;
    o.routes.push_back(std::move(r));
    return o;
  };
  route_options a = route("/a", "q");
  auto o = with_route(a);
  o.routes.push_back(a);
  EXPECT_FALSE(http_ingest::make(o, sink, err));
  EXPECT_EQ(err, "route '/a' is declared twice");
  EXPECT_FALSE(http_ingest::make(with_route(route("/f", "q.fifo")), sink, err));
  EXPECT_EQ(err, "route '/f': FIFO queue 'q.fifo' needs group_id_field");
  EXPECT_FALSE(http_ingest::make(with_route(route("nope", "q")), sink, err));
  EXPECT_NE(err.find("must start with '/'"), std::string::npos);
  EXPECT_FALSE(http_ingest::make(with_route(route("/x", "bad name")), sink, err));
  EXPECT_NE(err.find("not a valid queue name"), std::string::npos);
  route_options t = route("/t", "q");
  t.attributes = {{"f", "n", "Binary", false}};
  EXPECT_FALSE(http_ingest::make(with_route(t), sink, err));
  EXPECT_NE(err.find("type must be String or Number"), std::string::npos) << err;
  t.attributes = {{"f", "AWS.reserved", "String", false}};
  EXPECT_FALSE(http_ingest::make(with_route(t), sink, err));
  EXPECT_NE(err.find("AWS.reserved"), std::string::npos) << err;
  ingest_options c;
  c.allow_cidrs = {"300.0.0.0/8"};
  EXPECT_FALSE(http_ingest::make(c, sink, err));
  EXPECT_NE(err.find("'300.0.0.0/8'"), std::string::npos) << err;
}

TEST(IngestOptions, NonLoopbackBindNeedsATokenUnlessAllowed) {
  ingest_options o;
  EXPECT_FALSE(http_ingest::check_bind("127.0.0.1", o, false));
  EXPECT_FALSE(http_ingest::check_bind("::1", o, false));
  auto err = http_ingest::check_bind("0.0.0.0", o, false);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("without a token"), std::string::npos);
  EXPECT_FALSE(http_ingest::check_bind("0.0.0.0", o, true));
  o.tokens = {"t"};
  EXPECT_FALSE(http_ingest::check_bind("0.0.0.0", o, false));
  EXPECT_TRUE(http_ingest::check_bind("not-an-ip", o, false));
}

}  // namespace
}  // namespace sqsrelay::sources
