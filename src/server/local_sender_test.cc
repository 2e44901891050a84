// In-process sends: validation per message, chunking into WAL records, durability before
// the completion, queue creation, and that the messages are receivable through the API.
#include "server/local_sender.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <future>

#include "base/clock.h"
#include "base/random.h"
#include "server/api.h"
#include "server/service.h"

namespace sqsrelay::server {
namespace {

namespace json = boost::json;

class local_sender_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("sqsrelay-local-sender-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    open();
  }
  void TearDown() override {
    a_.reset();
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }
  void open() {
    a_.reset();
    svc_.reset();
    service_options o;
    o.data_dir = dir_;
    std::string err;
    auto s = service::open(o, clk_, rng_, &err);
    ASSERT_TRUE(s) << err;
    svc_ = std::move(*s);
    a_ = std::make_unique<api>(*svc_);
  }

  struct sent {
    std::optional<sqs::api_error> error;
    local_send_result result;
    uint64_t durable_at_completion = 0;
  };
  sent send(local_sender& ls, std::string_view queue, std::span<const local_message> msgs) {
    std::promise<sent> p;
    ls.send(queue, msgs, [&](const sqs::api_error* e, local_send_result r) {
      sent s;
      if (e) s.error = *e;
      s.result = std::move(r);
      s.durable_at_completion = svc_->log().durable_lsn();
      p.set_value(std::move(s));
    });
    return p.get_future().get();
  }

  std::vector<std::string> receive_all(const std::string& queue) {
    std::vector<std::string> bodies;
    for (;;) {
      json::object req{{"QueueUrl", "http://localhost/000000000000/" + queue},
                       {"MaxNumberOfMessages", 10}, {"VisibilityTimeout", 300}};
      request_context ctx{"localhost", "", "000000000000", ""};
      auto f = boost::asio::co_spawn(ioc_, a_->handle("ReceiveMessage", req, ctx),
                                     boost::asio::use_future);
      ioc_.restart();
      ioc_.run();
      auto out = f.get();
      EXPECT_FALSE(out.error);
      auto obj = out.text.empty() ? out.result : json::parse(out.text).as_object();
      auto* msgs = obj.if_contains("Messages");
      if (!msgs || msgs->as_array().empty()) return bodies;
      for (auto& m : msgs->as_array())
        bodies.emplace_back(m.as_object().at("Body").as_string());
    }
  }

  std::filesystem::path dir_;
  manual_clock clk_{std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000))};
  random_source rng_{1};
  std::unique_ptr<service> svc_;
  std::unique_ptr<api> a_;
  boost::asio::io_context ioc_;
};

TEST_F(local_sender_test, stores_many_messages_durably_and_rejects_only_the_invalid) {
  local_sender ls(*svc_, true);
  std::vector<std::string> bodies;
  for (int i = 0; i < 95; ++i) bodies.push_back("m" + std::to_string(i));
  bodies[3] = std::string("bad\x01", 4);   // invalid character
  bodies[50] = std::string(300'000, 'x');  // over the queue limit set below
  bodies[60] = "";                          // empty
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<queue>>(svc_->create_queue(
      "small", {{"MaximumMessageSize", "262144"}}, {})));
  std::vector<local_message> msgs;
  for (auto& b : bodies) msgs.push_back({b, {}, -1});
  auto s = send(ls, "small", msgs);
  ASSERT_FALSE(s.error) << s.error->message;
  EXPECT_EQ(s.result.stored, 92u);
  ASSERT_EQ(s.result.rejected.size(), 3u);
  EXPECT_EQ(s.result.rejected[0].index, 3u);
  EXPECT_EQ(s.result.rejected[0].error.type, "InvalidMessageContents");
  EXPECT_EQ(s.result.rejected[1].index, 50u);
  EXPECT_EQ(s.result.rejected[2].index, 60u);
  EXPECT_EQ(s.durable_at_completion, svc_->log().last_lsn());
  EXPECT_GE(svc_->log().last_lsn(), 10u);  // ≤ 10 messages per record

  // They survive a restart (the store is the same WAL as SendMessageBatch).
  open();
  auto got = receive_all("small");
  EXPECT_EQ(got.size(), 92u);
  std::sort(got.begin(), got.end());
  EXPECT_TRUE(std::binary_search(got.begin(), got.end(), "m94"));
  EXPECT_FALSE(std::binary_search(got.begin(), got.end(), "m3"));
}

TEST_F(local_sender_test, missing_queue_is_created_or_reported) {
  local_sender strict(*svc_, false);
  local_message m{"hello", {}, -1};
  auto s = send(strict, "nope", std::span(&m, 1));
  ASSERT_TRUE(s.error);
  EXPECT_EQ(s.error->type, "QueueDoesNotExist");
  local_sender lenient(*svc_, true);
  s = send(lenient, "made-on-demand", std::span(&m, 1));
  ASSERT_FALSE(s.error);
  EXPECT_EQ(s.result.stored, 1u);
  EXPECT_EQ(receive_all("made-on-demand"), std::vector<std::string>{"hello"});
  s = send(lenient, "bad name!", std::span(&m, 1));
  ASSERT_TRUE(s.error);
}

TEST_F(local_sender_test, attributes_are_validated_and_kept) {
  local_sender ls(*svc_, true);
  std::vector<sqs::attribute_view> good{{"device", "String", "t1", false}};
  std::vector<sqs::attribute_view> bad{{"device", "Strange", "t1", false}};
  std::vector<local_message> msgs{{"a", good, -1}, {"b", bad, -1}};
  auto s = send(ls, "attrs", msgs);
  ASSERT_FALSE(s.error);
  EXPECT_EQ(s.result.stored, 1u);
  ASSERT_EQ(s.result.rejected.size(), 1u);
  EXPECT_EQ(s.result.rejected[0].index, 1u);
}

}  // namespace
}  // namespace sqsrelay::server
