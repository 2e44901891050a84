// sqs::client against the embedded server running in-process on a loopback port, with SigV4
// verification on: every call below is signed, sent over the pool and checked by the
// server's verifier.
#include "sqs/client.h"

#include <gtest/gtest.h>

#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "aws/credential_chain.h"
#include "base/random.h"
#include "http/server.h"
#include "server/frontend.h"
#include "server/service.h"

namespace sqsrelay::sqs {
namespace {

namespace asio = boost::asio;

class sqs_client_test : public ::testing::Test {
 protected:
  void SetUp() override { start_server(); }

  void start_server(server::frontend_options fo = {}) {
    server::service_options so;
    so.in_memory = true;
    std::string err;
    auto svc = server::service::open(so, system_clock::instance(), rng_, &err);
    ASSERT_TRUE(svc) << err;
    svc_ = std::move(*svc);
    store_.add(aws::credentials{"AKIDCLIENTTEST", aws::secret_string("client-test-secret"), {}});
    fe_ = std::make_unique<server::frontend>(*svc_, store_, std::move(fo));
    http::server_options ho;
    srv_ = std::make_unique<http::server>(
        std::vector<asio::io_context*>{&ioc_}, ho,
        [this](http::request r, http::peer_info p) {
          targets_.emplace_back(r.target().data(), r.target().size());
          return fe_->handle(std::move(r), p);
        },
        [this](int s, std::string_view reason) { return fe_->transport_error(s, reason); });
    ASSERT_TRUE(srv_->start());
    make_client(srv_->port(), {});
  }

  void make_client(uint16_t port, http::client_options ho,
                   aws::credentials creds = {"AKIDCLIENTTEST",
                                             aws::secret_string("client-test-secret"), {}},
                   std::string path = "/") {
    sqs_.reset();
    http_.reset();
    auto h = http::client::create(ioc_.get_executor(), ho);
    ASSERT_TRUE(h);
    http_ = std::move(*h);
    std::vector<std::unique_ptr<aws::credential_provider>> p;
    p.push_back(aws::make_static_provider(std::move(creds), "test"));
    chain_ = std::make_unique<aws::credential_chain>(ioc_.get_executor(), std::move(p),
                                                     system_clock::instance());
    client_options co;
    co.endpoint = http::origin{false, "127.0.0.1", port};
    co.path = std::move(path);
    sqs_ = std::make_unique<client>(*http_, *chain_, system_clock::instance(), co);
  }

  void TearDown() override {
    sqs_.reset();
    http_.reset();
    if (srv_) srv_->stop();
    ioc_.poll();
  }

  template <class T>
  T run(asio::awaitable<T> a) {
    std::optional<T> out;
    asio::co_spawn(ioc_, std::move(a), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out.emplace(std::move(v));
    });
    while (!out) {
      if (ioc_.stopped()) ioc_.restart();  // poll() ran out of work earlier
      ioc_.run_one();
    }
    return std::move(*out);
  }

  asio::io_context ioc_{1};
  random_source rng_;
  aws::credential_store store_;
  std::unique_ptr<server::service> svc_;
  std::unique_ptr<server::frontend> fe_;
  std::unique_ptr<http::server> srv_;
  std::unique_ptr<http::client> http_;
  std::unique_ptr<aws::credential_chain> chain_;
  std::unique_ptr<client> sqs_;
  std::vector<std::string> targets_;  // every request target the server saw
};

TEST_F(sqs_client_test, queue_lifecycle_send_receive_delete) {
  auto url = run(sqs_->create_queue("orders", {{"VisibilityTimeout", "45"}}));
  ASSERT_TRUE(url) << url.error().message;
  EXPECT_NE(url->find("/000000000000/orders"), std::string::npos) << *url;

  std::vector<send_entry> entries;
  for (int i = 0; i < 3; ++i) {
    send_entry e;
    e.id = "m" + std::to_string(i);
    e.body = "body \"" + std::to_string(i) + "\" ü";
    e.message_attributes.push_back({"color", "String", "red"});
    e.message_attributes.push_back({"blob", "Binary", std::string("\x00\x01\xff", 3)});
    entries.push_back(std::move(e));
  }
  auto sent = run(sqs_->send_message_batch("orders", std::move(entries)));  // by name
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(sent->successful.size(), 3u);
  EXPECT_TRUE(sent->failed.empty());

  receive_options ro;
  ro.max_messages = 10;
  ro.wait_seconds = 0;
  auto got = run(sqs_->receive_message(*url, ro));  // by URL
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), 3u);
  const auto& m = got->front();
  EXPECT_EQ(m.body.substr(0, 5), "body ");
  EXPECT_FALSE(m.receipt_handle.empty());
  EXPECT_TRUE(m.attributes.count("SentTimestamp"));
  ASSERT_EQ(m.message_attributes.size(), 2u);
  for (auto& a : m.message_attributes) {
    if (a.name == "blob") {
      EXPECT_EQ(a.value, std::string("\x00\x01\xff", 3));
    } else {
      EXPECT_EQ(a.value, "red");
    }
  }

  // One message back to visible at once, one bad handle: per-entry answers.
  std::vector<visibility_entry> vis{{"v0", got->front().receipt_handle, 0},
                                    {"bad", "not-a-handle", 10}};
  auto changed = run(sqs_->change_message_visibility_batch("orders", std::move(vis)));
  ASSERT_TRUE(changed) << changed.error().message;
  ASSERT_EQ(changed->successful.size(), 1u);
  EXPECT_EQ(changed->successful[0], "v0");
  ASSERT_EQ(changed->failed.size(), 1u);
  EXPECT_EQ(changed->failed[0].id, "bad");
  auto again = run(sqs_->receive_message(*url, ro));
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->size(), 1u);  // the one made visible again
  EXPECT_EQ(again->front().message_id, got->front().message_id);
  (*got)[0] = again->front();  // its current receipt handle
  auto none = run(sqs_->change_message_visibility_batch("orders", {}));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("ChangeMessageVisibilityBatch: 0 entries"), std::string::npos);

  std::vector<handle_entry> dels;
  for (size_t i = 0; i < got->size(); ++i)
    dels.push_back({"d" + std::to_string(i), (*got)[i].receipt_handle});
  dels.push_back({"bad", "not-a-handle"});
  auto deleted = run(sqs_->delete_message_batch("orders", std::move(dels)));
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ(deleted->successful.size(), 3u);
  ASSERT_EQ(deleted->failed.size(), 1u);
  EXPECT_EQ(deleted->failed[0].id, "bad");
  EXPECT_TRUE(deleted->failed[0].sender_fault);

  auto attrs = run(sqs_->get_queue_attributes("orders"));
  ASSERT_TRUE(attrs);
  EXPECT_EQ(attrs->at("VisibilityTimeout"), "45");
  EXPECT_EQ(attrs->at("ApproximateNumberOfMessages"), "0");

  auto list = run(sqs_->list_queues("ord"));
  ASSERT_TRUE(list);
  ASSERT_EQ(list->queue_urls.size(), 1u);
  EXPECT_EQ(list->queue_urls[0], *url);

  EXPECT_TRUE(run(sqs_->purge_queue("orders")));
  EXPECT_TRUE(run(sqs_->delete_queue("orders")));
  auto gone = run(sqs_->get_queue_attributes("orders"));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, "QueueDoesNotExist");
}

TEST_F(sqs_client_test, api_errors_are_typed_and_classified) {
  auto r = run(sqs_->get_queue_url("no-such-queue"));
  ASSERT_FALSE(r);
  const client_error& e = r.error();
  EXPECT_EQ(e.kind, error_kind::api);
  EXPECT_EQ(e.code, "QueueDoesNotExist");
  EXPECT_EQ(e.query_code, "AWS.SimpleQueueService.NonExistentQueue");
  EXPECT_EQ(e.http_status, 400);
  EXPECT_TRUE(e.sender_fault);
  EXPECT_FALSE(e.retryable);
  EXPECT_NE(e.message.find("GetQueueUrl"), std::string::npos) << e.message;

  auto bad = run(sqs_->create_queue("bad name!"));
  ASSERT_FALSE(bad);
  EXPECT_FALSE(bad.error().retryable);
}

TEST_F(sqs_client_test, wrong_secret_is_refused_by_the_verifier) {
  make_client(srv_->port(), {}, {"AKIDCLIENTTEST", aws::secret_string("wrong"), {}});
  auto r = run(sqs_->list_queues());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "SignatureDoesNotMatch");
  EXPECT_EQ(r.error().http_status, 403);
  EXPECT_FALSE(r.error().retryable);
}

TEST_F(sqs_client_test, requests_go_to_the_endpoint_path_and_are_signed_with_it) {
  // The server verifies SigV4 over the target it received: a path sent but not signed (or
  // signed but not sent) is SignatureDoesNotMatch.
  make_client(srv_->port(), {}, {"AKIDCLIENTTEST", aws::secret_string("client-test-secret"), {}},
              "/sub/path");
  targets_.clear();
  auto url = run(sqs_->create_queue("prefixed"));
  ASSERT_TRUE(url) << url.error().message;
  send_entry e;
  e.body = "x";
  auto sent = run(sqs_->send_message("prefixed", std::move(e)));
  ASSERT_TRUE(sent) << sent.error().message;
  auto listed = run(sqs_->list_queues());
  ASSERT_TRUE(listed) << listed.error().message;
  ASSERT_FALSE(targets_.empty());
  for (auto& t : targets_) EXPECT_EQ(t, "/sub/path");
}

TEST_F(sqs_client_test, batch_entry_failures_do_not_fail_the_batch) {
  ASSERT_TRUE(run(sqs_->create_queue("mixed")));
  std::vector<send_entry> entries(3);
  entries[0] = {"ok", "fine", {}, -1, {}, {}};
  entries[1] = {"bad", std::string("bad \x01 char"), {}, -1, {}, {}};
  entries[2] = {"ok2", "also fine", {}, 0, {}, {}};
  auto r = run(sqs_->send_message_batch("mixed", std::move(entries)));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->successful.size(), 2u);
  ASSERT_EQ(r->failed.size(), 1u);
  EXPECT_EQ(r->failed[0].id, "bad");
  EXPECT_TRUE(r->failed[0].sender_fault);
  EXPECT_EQ(r->failed[0].code, "InvalidMessageContents");
}

TEST_F(sqs_client_test, invalid_batches_are_refused_before_sending) {
  std::vector<send_entry> none;
  auto r = run(sqs_->send_message_batch("q", std::move(none)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, error_kind::invalid);
  EXPECT_EQ(sqs_->stats().calls, 0u);
}

TEST_F(sqs_client_test, queue_limits_read_and_cached) {
  ASSERT_TRUE(run(sqs_->create_queue("small", {{"MaximumMessageSize", "2048"}})));
  auto l = run(sqs_->get_queue_limits("small"));
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->max_message_size, 2048u);
  uint64_t calls = sqs_->stats().calls;
  auto again = run(sqs_->get_queue_limits("small"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->max_message_size, 2048u);
  EXPECT_EQ(sqs_->stats().calls, calls);  // served from the cache
  // Changing the attribute through the client drops the cached value.
  ASSERT_TRUE(run(sqs_->set_queue_attributes("small", {{"MaximumMessageSize", "4096"}})));
  auto changed = run(sqs_->get_queue_limits("small"));
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->max_message_size, 4096u);
}

TEST_F(sqs_client_test, names_resolve_once_and_connections_are_reused) {
  ASSERT_TRUE(run(sqs_->create_queue("reuse")));
  make_client(srv_->port(), {});  // a fresh client: nothing cached
  for (int i = 0; i < 5; ++i) {
    send_entry e{"a", "x", {}, -1, {}, {}};
    auto r = run(sqs_->send_message("reuse", std::move(e)));
    ASSERT_TRUE(r) << r.error().message;
  }
  EXPECT_EQ(sqs_->stats().calls, 6u);  // one GetQueueUrl, five sends
  EXPECT_EQ(http_->stats().connections_opened.load(), 1u);
  EXPECT_EQ(http_->stats().connections_reused.load(), 5u);
}

TEST_F(sqs_client_test, concurrent_requests_share_a_capped_pool) {
  ASSERT_TRUE(run(sqs_->create_queue("par")));
  http::client_options ho;
  ho.max_connections_per_origin = 3;
  make_client(srv_->port(), ho);
  int done = 0, ok = 0;
  const int n = 40;
  std::vector<std::vector<send_entry>> batches(n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < 10; ++j)
      batches[i].push_back({std::to_string(j), "message " + std::to_string(i * 10 + j), {}, -1, {}, {}});
    asio::co_spawn(ioc_, sqs_->send_message_batch("par", std::move(batches[i])),
                   [&](std::exception_ptr, client_result<send_batch_result> r) {
                     ++done;
                     if (r && r->successful.size() == 10) ++ok;
                   });
  }
  while (done < n) ioc_.run_one();
  EXPECT_EQ(ok, n);
  EXPECT_LE(http_->stats().connections_opened.load(), 3u);
  EXPECT_GT(http_->stats().pool_waits.load(), 0u);
  auto attrs = run(sqs_->get_queue_attributes("par", {"ApproximateNumberOfMessages"}));
  ASSERT_TRUE(attrs);
  EXPECT_EQ(attrs->at("ApproximateNumberOfMessages"), std::to_string(n * 10));
}

TEST_F(sqs_client_test, connection_refused_is_a_retryable_transport_error) {
  uint16_t port = srv_->port();
  srv_->stop();
  ioc_.poll();
  make_client(port, {});
  auto r = run(sqs_->list_queues());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, error_kind::transport);
  EXPECT_TRUE(r.error().retryable);
  EXPECT_FALSE(r.error().request_sent);
  EXPECT_NE(r.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.error().message;
}

TEST(sqs_client_util, throttling_codes) {
  EXPECT_TRUE(is_throttling_code("RequestThrottled"));
  EXPECT_TRUE(is_throttling_code("ThrottlingException"));
  EXPECT_TRUE(is_throttling_code("Throttling"));
  EXPECT_FALSE(is_throttling_code("QueueDoesNotExist"));
}

TEST(sqs_client_util, queue_url_parts) {
  auto p = parse_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->origin, "https://sqs.eu-west-1.amazonaws.com");
  EXPECT_EQ(p->account, "123456789012");
  EXPECT_EQ(p->name, "orders.fifo");
  EXPECT_FALSE(parse_queue_url("orders"));
  // Any path ending in a name: servers find the queue by its last segment.
  auto one = parse_queue_url("http://127.0.0.1:9324/orders");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->origin, "http://127.0.0.1:9324");
  EXPECT_EQ(one->account, "");
  EXPECT_EQ(one->name, "orders");
  auto three = parse_queue_url("http://127.0.0.1:9324/a/b/c/");
  ASSERT_TRUE(three);
  EXPECT_EQ(three->account, "b");
  EXPECT_EQ(three->name, "c");
  EXPECT_FALSE(parse_queue_url("http://127.0.0.1:9324"));
  EXPECT_FALSE(parse_queue_url("http://127.0.0.1:9324/"));
  EXPECT_FALSE(parse_queue_url("http://127.0.0.1:9324/q?Action=x"));
}

}  // namespace
}  // namespace sqsrelay::sqs
