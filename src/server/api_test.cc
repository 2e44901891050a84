// The SQS actions through the real handlers, on an in-memory or temp-dir store with a manual
// clock: visibility, delays, redrive, retention, receipts, validation, recovery.
#include "server/api.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <filesystem>

#include "base/hash.h"

namespace sqsrelay::server {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class api_test : public ::testing::Test {
 protected:
  void SetUp() override { open(true); }

  void open(bool in_memory) {
    a_.reset();
    svc_.reset();
    service_options o;
    o.in_memory = in_memory;
    o.data_dir = dir_;
    std::string err;
    auto s = service::open(o, clk_, rng_, &err);
    ASSERT_TRUE(s) << err;
    svc_ = std::move(*s);
    a_ = std::make_unique<api>(*svc_);
  }

  api_outcome call(std::string action, json::object req) {
    request_context ctx{"localhost:9324", "", "000000000000", ""};
    auto f = boost::asio::co_spawn(ioc_, a_->handle(action, std::move(req), ctx),
                                   boost::asio::use_future);
    ioc_.restart();
    ioc_.run();
    return f.get();
  }
  json::object ok(std::string action, json::object req) {
    auto out = call(action, std::move(req));
    EXPECT_FALSE(out.error) << action << ": " << (out.error ? out.error->message : "");
    if (!out.text.empty()) return json::parse(out.text).as_object();
    return out.result;
  }
  std::string error_code(std::string action, json::object req) {
    auto out = call(action, std::move(req));
    return out.error ? out.error->type : "(none)";
  }
  std::string create(std::string name, json::object attrs = {}) {
    json::object req{{"QueueName", name}};
    if (!attrs.empty()) req["Attributes"] = attrs;
    return std::string(ok("CreateQueue", req).at("QueueUrl").as_string());
  }
  json::array receive(const std::string& url, int max = 10, int vt = -1) {
    json::object req{{"QueueUrl", url}, {"MaxNumberOfMessages", max},
                     {"AttributeNames", json::array{"All"}},
                     {"MessageAttributeNames", json::array{"All"}}};
    if (vt >= 0) req["VisibilityTimeout"] = vt;
    auto r = ok("ReceiveMessage", req);
    auto* m = r.if_contains("Messages");
    return m ? m->as_array() : json::array{};
  }
  void send(const std::string& url, std::string body, json::object extra = {}) {
    extra["QueueUrl"] = url;
    extra["MessageBody"] = body;
    ok("SendMessage", extra);
  }
  // A RedrivePolicy naming the queue at `dlq_url` as the dead-letter queue.
  std::string redrive_to(const std::string& dlq_url, int max_receive_count) {
    return R"({"deadLetterTargetArn":")" + attr(dlq_url, "QueueArn") +
           R"(","maxReceiveCount":)" + std::to_string(max_receive_count) + "}";
  }
  std::string attr(const std::string& url, std::string name) {
    auto r = ok("GetQueueAttributes",
                {{"QueueUrl", url}, {"AttributeNames", json::array{json::string(name)}}});
    return std::string(r.at("Attributes").at(name).as_string());
  }

  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("sqsrelay-api-test-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  manual_clock clk_{std::chrono::system_clock::time_point(1'700'000'000s)};
  random_source rng_{7};
  boost::asio::io_context ioc_;
  std::unique_ptr<service> svc_;
  std::unique_ptr<api> a_;

  void TearDown() override {
    a_.reset();
    svc_.reset();
    std::filesystem::remove_all(dir_);
  }
};

TEST_F(api_test, message_becomes_visible_again_after_its_visibility_timeout) {
  auto url = create("q", {{"VisibilityTimeout", "30"}});
  send(url, "hello");
  ASSERT_EQ(receive(url).size(), 1u);
  EXPECT_TRUE(receive(url).empty());
  clk_.advance(29s);
  EXPECT_TRUE(receive(url).empty());
  clk_.advance(2s);
  auto again = receive(url);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].at("Attributes").at("ApproximateReceiveCount").as_string(), "2");
}

TEST_F(api_test, each_receive_gets_a_new_handle_and_only_the_latest_deletes) {
  auto url = create("q");
  send(url, "m");
  auto first = receive(url, 1, 0);
  auto second = receive(url, 1, 60);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  auto h1 = first[0].at("ReceiptHandle").as_string();
  auto h2 = second[0].at("ReceiptHandle").as_string();
  EXPECT_NE(h1, h2);
  ok("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", h1}});  // stale: no-op
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessagesNotVisible"), "1");
  ok("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", h2}});
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessagesNotVisible"), "0");
  EXPECT_EQ(error_code("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", "garbage"}}),
            "ReceiptHandleIsInvalid");
}

TEST_F(api_test, queue_and_message_delays_hold_messages_back) {
  auto url = create("q", {{"DelaySeconds", "10"}});
  send(url, "queue-delay");
  send(url, "no-delay", {{"DelaySeconds", 0}});
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessagesDelayed"), "1");
  auto now = receive(url);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].at("Body").as_string(), "no-delay");
  clk_.advance(10s);
  auto later = receive(url);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].at("Body").as_string(), "queue-delay");
}

TEST_F(api_test, message_moves_to_the_dead_letter_queue_after_max_receive_count) {
  auto dlq = create("dlq");
  auto arn = attr(dlq, "QueueArn");
  auto src = create("src", {{"RedrivePolicy", R"({"deadLetterTargetArn":")" + arn +
                                                  R"(","maxReceiveCount":"2"})"}});
  send(src, "poison");
  for (int i = 0; i < 2; ++i) ASSERT_EQ(receive(src, 1, 0).size(), 1u);
  EXPECT_TRUE(receive(src, 1, 0).empty());
  auto moved = receive(dlq);
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].at("Body").as_string(), "poison");
  EXPECT_EQ(moved[0].at("Attributes").at("DeadLetterQueueSourceArn").as_string(),
            attr(src, "QueueArn"));
  auto sources = ok("ListDeadLetterSourceQueues", {{"QueueUrl", dlq}});
  ASSERT_EQ(sources.at("queueUrls").as_array().size(), 1u);
}

TEST_F(api_test, dead_letter_source_arn_survives_a_restart_and_only_marks_moved_messages) {
  open(false);
  auto dlq = create("dlq");
  auto src = create("src", {{"RedrivePolicy", redrive_to(dlq, 1)}});
  send(src, "poison");
  send(dlq, "direct");
  ASSERT_EQ(receive(src, 1, 0).size(), 1u);
  EXPECT_TRUE(receive(src, 1, 0).empty());  // moved
  open(false);
  auto got = receive(dlq, 10, 30);
  ASSERT_EQ(got.size(), 2u);
  for (auto& m : got) {
    const auto& attrs = m.at("Attributes").as_object();
    if (m.at("Body").as_string() == "poison")
      EXPECT_EQ(attrs.at("DeadLetterQueueSourceArn").as_string(), attr(src, "QueueArn"));
    else
      EXPECT_FALSE(attrs.contains("DeadLetterQueueSourceArn"));
  }
}

TEST_F(api_test, a_redriven_message_survives_a_restart_after_its_source_queue_is_deleted) {
  open(false);
  auto dlq = create("dlq");
  auto src = create("src", {{"RedrivePolicy", redrive_to(dlq, 1)}});
  send(src, "poison");
  send(src, "deleted with its queue");
  ASSERT_EQ(receive(src, 1, 0).size(), 1u);
  ASSERT_EQ(receive(src, 1, 300).size(), 1u);  // the other one, now in flight
  EXPECT_TRUE(receive(src, 1, 0).empty());     // "poison" moved
  ok("DeleteQueue", {{"QueueUrl", src}});
  open(false);
  auto got = receive(dlq, 10, 30);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("Body").as_string(), "poison");
  EXPECT_EQ(attr(dlq, "ApproximateNumberOfMessages"), "0");
  ok("DeleteMessage", {{"QueueUrl", dlq}, {"ReceiptHandle", got[0].at("ReceiptHandle")}});
  open(false);  // and its delete holds too
  EXPECT_TRUE(receive(dlq, 10, 30).empty());
}

TEST_F(api_test, create_queue_of_an_existing_queue_whose_dead_letter_queue_is_gone_keeps_it) {
  auto dlq = create("dlq");
  auto policy = redrive_to(dlq, 3);
  auto src = create("src", {{"RedrivePolicy", policy}});
  send(src, "keep me");
  ok("DeleteQueue", {{"QueueUrl", dlq}});
  EXPECT_EQ(create("src"), src);  // idempotent, nothing asked about the redrive policy
  EXPECT_EQ(error_code("CreateQueue",
                       {{"QueueName", "src"}, {"Attributes", {{"RedrivePolicy", policy}}}}),
            "InvalidParameterValue");  // the target does not exist
  EXPECT_EQ(attr(src, "ApproximateNumberOfMessages"), "1");
  ASSERT_EQ(receive(src).size(), 1u);
}

TEST_F(api_test, redrive_allow_policy_deny_all_refuses_sources) {
  auto dlq = create("dlq", {{"RedriveAllowPolicy", R"({"redrivePermission":"denyAll"})"}});
  auto arn = attr(dlq, "QueueArn");
  auto src = create("src");
  EXPECT_EQ(error_code("SetQueueAttributes",
                       {{"QueueUrl", src},
                        {"Attributes", {{"RedrivePolicy", R"({"deadLetterTargetArn":")" + arn +
                                                              R"(","maxReceiveCount":3})"}}}}),
            "InvalidParameterValue");
}

TEST_F(api_test, a_source_stays_configurable_after_its_dead_letter_queue_is_deleted_or_closed) {
  auto dlq = create("dlq");
  const auto policy = redrive_to(dlq, 3);
  auto src = create("src", {{"RedrivePolicy", policy}});
  ok("SetQueueAttributes",
     {{"QueueUrl", dlq},
      {"Attributes", {{"RedriveAllowPolicy", R"({"redrivePermission":"denyAll"})"}}}});
  ok("SetQueueAttributes", {{"QueueUrl", src}, {"Attributes", {{"VisibilityTimeout", "10"}}}});
  EXPECT_EQ(attr(src, "VisibilityTimeout"), "10");
  ok("DeleteQueue", {{"QueueUrl", dlq}});
  ok("SetQueueAttributes", {{"QueueUrl", src}, {"Attributes", {{"DelaySeconds", "1"}}}});
  EXPECT_EQ(attr(src, "DelaySeconds"), "1");
  // Naming the gone target is still refused; dropping the policy is not.
  EXPECT_EQ(error_code("SetQueueAttributes",
                       {{"QueueUrl", src}, {"Attributes", {{"RedrivePolicy", policy}}}}),
            "InvalidParameterValue");
  ok("SetQueueAttributes", {{"QueueUrl", src}, {"Attributes", {{"RedrivePolicy", ""}}}});
  EXPECT_EQ(ok("GetQueueAttributes", {{"QueueUrl", src}, {"AttributeNames", {"All"}}})
                .at("Attributes")
                .as_object()
                .if_contains("RedrivePolicy"),
            nullptr);
}

TEST_F(api_test, a_queue_has_one_kind_of_server_side_encryption) {
  auto url = create("q");
  EXPECT_EQ(attr(url, "SqsManagedSseEnabled"), "true");
  ok("SetQueueAttributes",
     {{"QueueUrl", url}, {"Attributes", {{"KmsMasterKeyId", "alias/aws/sqs"}}}});
  EXPECT_EQ(attr(url, "KmsMasterKeyId"), "alias/aws/sqs");
  EXPECT_EQ(attr(url, "SqsManagedSseEnabled"), "false");
  ok("SetQueueAttributes", {{"QueueUrl", url}, {"Attributes", {{"SqsManagedSseEnabled", "true"}}}});
  EXPECT_EQ(attr(url, "SqsManagedSseEnabled"), "true");
  EXPECT_EQ(ok("GetQueueAttributes", {{"QueueUrl", url}, {"AttributeNames", {"All"}}})
                .at("Attributes")
                .as_object()
                .if_contains("KmsMasterKeyId"),
            nullptr);
  EXPECT_EQ(
      error_code("SetQueueAttributes",
                 {{"QueueUrl", url},
                  {"Attributes", {{"KmsMasterKeyId", "k"}, {"SqsManagedSseEnabled", "true"}}}}),
      "InvalidAttributeName");
}

TEST_F(api_test, policy_must_be_a_policy_document) {
  auto url = create("q");
  for (const char* bad : {"[]", "\"x\"", "{", R"({"Version":"2012-10-17","Statement":"nope"})",
                          R"({"Version":1,"Statement":[]})", R"({"Statement":[1]})"})
    EXPECT_EQ(
        error_code("SetQueueAttributes", {{"QueueUrl", url}, {"Attributes", {{"Policy", bad}}}}),
        "InvalidAttributeValue")
        << bad;
  const std::string good =
      R"({"Version":"2012-10-17","Id":"p","Statement":[{"Sid":"s","Effect":"Allow",)"
      R"("Principal":"*","Action":"sqs:SendMessage","Resource":"*"}]})";
  ok("SetQueueAttributes", {{"QueueUrl", url}, {"Attributes", {{"Policy", good}}}});
  EXPECT_EQ(attr(url, "Policy"), good);
  ok("SetQueueAttributes", {{"QueueUrl", url}, {"Attributes", {{"Policy", ""}}}});  // removes it
}

TEST_F(api_test, tag_keys_and_values_must_not_carry_the_reserved_aws_prefix) {
  auto url = create("q");
  EXPECT_EQ(error_code("TagQueue", {{"QueueUrl", url}, {"Tags", {{"aws:k", "v"}}}}),
            "InvalidParameterValue");
  EXPECT_EQ(error_code("TagQueue", {{"QueueUrl", url}, {"Tags", {{"k", "aws:v"}}}}),
            "InvalidParameterValue");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "t"}, {"tags", {{"k", "aws:v"}}}}),
            "InvalidParameterValue");
  ok("TagQueue", {{"QueueUrl", url}, {"Tags", {{"k", "v:aws:"}}}});  // only a prefix is reserved
  EXPECT_EQ(ok("ListQueueTags", {{"QueueUrl", url}}).at("Tags").at("k").as_string(), "v:aws:");
}

TEST_F(api_test, a_lost_catalog_never_lets_a_new_queue_inherit_old_records) {
  open(false);
  auto old = create("secret");
  for (int i = 0; i < 3; ++i) send(old, "secret " + std::to_string(i));
  a_.reset();
  svc_.reset();
  std::filesystem::remove(dir_ / "catalog.json");
  open(false);
  EXPECT_EQ(svc_->recovery().queues, 0u);
  EXPECT_EQ(svc_->recovery().unknown_queue_records, 3u);  // a record per SendMessage
  EXPECT_EQ(svc_->recovery().unknown_queue_ids, 1u);
  auto fresh = create("brand-new");
  EXPECT_EQ(attr(fresh, "ApproximateNumberOfMessages"), "0");
  open(false);  // the old records replay again, into no queue (the catalog now covers
                // their id, as it would a deleted queue's)
  EXPECT_EQ(attr(fresh, "ApproximateNumberOfMessages"), "0");
  EXPECT_TRUE(receive(fresh, 10, 30).empty());
}

TEST_F(api_test, expired_messages_disappear_after_the_retention_period) {
  auto url = create("q", {{"MessageRetentionPeriod", "60"}});
  send(url, "old");
  clk_.advance(61s);
  svc_->expire_all();
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessages"), "0");
  EXPECT_TRUE(receive(url).empty());
}

TEST_F(api_test, expiry_finds_messages_that_became_visible_out_of_send_order) {
  auto url = create("q", {{"MessageRetentionPeriod", "60"}});
  ok("SendMessage", {{"QueueUrl", url}, {"MessageBody", "delayed-old"}, {"DelaySeconds", 50}});
  send(url, "received-old");
  ASSERT_EQ(receive(url, 10, 5).size(), 1u);  // back in the queue after 5 s
  clk_.advance(40s);
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessages"), "1");
  send(url, "new");
  clk_.advance(21s);  // both old ones are past retention; the delayed one turned visible last
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessages"), "3");
  svc_->expire_all();
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessages"), "1");
  auto got = receive(url);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].at("Body").as_string(), "new");
}

TEST_F(api_test, out_of_order_expiry_entries_of_deleted_messages_do_not_pile_up) {
  auto url = create("q", {{"DelaySeconds", "1"}});
  for (int i = 0; i < 3000; ++i) send(url, "m" + std::to_string(i));
  clk_.advance(2s);
  for (;;) {
    auto got = receive(url);
    if (got.empty()) break;
    for (auto& m : got)
      ok("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", m.at("ReceiptHandle")}});
  }
  auto q = svc_->find("q");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->late_expiry_entries(), 3000u);  // every message became visible after a delay
  svc_->expire_all();
  EXPECT_EQ(q->late_expiry_entries(), 0u) << "entries of deleted messages are dropped";
}

TEST_F(api_test, md5_of_attributes_matches_the_sqs_algorithm) {
  auto url = create("q");
  auto r = ok("SendMessage",
              {{"QueueUrl", url},
               {"MessageBody", "body"},
               {"MessageAttributes", {{"b", {{"DataType", "Binary"}, {"BinaryValue", "AAEC"}}},
                                      {"a", {{"DataType", "String"}, {"StringValue", "x"}}}}}});
  // Independent encoding: sorted names, u32 BE lengths, transport byte 1 (string) / 2 (binary).
  std::string enc;
  auto u32 = [&](uint32_t n) {
    for (int s = 24; s >= 0; s -= 8) enc.push_back(static_cast<char>(n >> s));
  };
  u32(1); enc += "a"; u32(6); enc += "String"; enc.push_back(1); u32(1); enc += "x";
  u32(1); enc += "b"; u32(6); enc += "Binary"; enc.push_back(2); u32(3);
  enc += std::string("\x00\x01\x02", 3);
  EXPECT_EQ(r.at("MD5OfMessageAttributes").as_string(), to_hex(md5(enc)));
  EXPECT_EQ(r.at("MD5OfMessageBody").as_string(), to_hex(md5("body")));
}

TEST_F(api_test, batch_validation_uses_aws_error_codes) {
  auto url = create("q");
  auto entry = [](std::string id, std::string body) {
    return json::object{{"Id", id}, {"MessageBody", body}};
  };
  EXPECT_EQ(error_code("SendMessageBatch", {{"QueueUrl", url}, {"Entries", json::array{}}}),
            "EmptyBatchRequest");
  json::array eleven;
  for (int i = 0; i < 11; ++i) eleven.push_back(entry("e" + std::to_string(i), "x"));
  EXPECT_EQ(error_code("SendMessageBatch", {{"QueueUrl", url}, {"Entries", eleven}}),
            "TooManyEntriesInBatchRequest");
  EXPECT_EQ(error_code("SendMessageBatch",
                       {{"QueueUrl", url}, {"Entries", json::array{entry("a", "x"), entry("a", "y")}}}),
            "BatchEntryIdsNotDistinct");
  EXPECT_EQ(error_code("SendMessageBatch",
                       {{"QueueUrl", url}, {"Entries", json::array{entry("bad id!", "x")}}}),
            "InvalidBatchEntryId");
  json::array big;
  for (int i = 0; i < 2; ++i) big.push_back(entry("b" + std::to_string(i), std::string(600000, 'x')));
  EXPECT_EQ(error_code("SendMessageBatch", {{"QueueUrl", url}, {"Entries", big}}),
            "BatchRequestTooLong");
  auto mixed = ok("SendMessageBatch",
                  {{"QueueUrl", url},
                   {"Entries", json::array{entry("good", "ok"), entry("bad", std::string("\x01", 1))}}});
  ASSERT_EQ(mixed.at("Successful").as_array().size(), 1u);
  ASSERT_EQ(mixed.at("Failed").as_array().size(), 1u);
  EXPECT_EQ(mixed.at("Failed").as_array()[0].at("Code").as_string(), "InvalidMessageContents");
  EXPECT_TRUE(mixed.at("Failed").as_array()[0].at("SenderFault").as_bool());
}

TEST_F(api_test, maximum_message_size_counts_attributes) {
  auto url = create("q", {{"MaximumMessageSize", "1024"}});
  send(url, std::string(1024, 'x'));
  EXPECT_EQ(error_code("SendMessage", {{"QueueUrl", url},
                                       {"MessageBody", std::string(1020, 'x')},
                                       {"MessageAttributes",
                                        {{"ab", {{"DataType", "String"}, {"StringValue", "v"}}}}}}),
            "InvalidParameterValue");
}

TEST_F(api_test, create_queue_is_idempotent_only_with_equal_attributes) {
  create("q", {{"VisibilityTimeout", "10"}});
  create("q", {{"VisibilityTimeout", "10"}});
  create("q");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "q"}, {"Attributes", {{"VisibilityTimeout", "11"}}}}),
            "QueueNameExists");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "bad name"}}), "InvalidParameterValue");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "f.fifo"}}), "InvalidParameterValue");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "f.fifo"}, {"Attributes", {{"FifoQueue", "true"}}}}),
            "UnsupportedOperation");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "q2"}, {"Attributes", {{"DelaySeconds", "901"}}}}),
            "InvalidAttributeValue");
  EXPECT_EQ(error_code("CreateQueue", {{"QueueName", "q2"}, {"Attributes", {{"Nope", "1"}}}}),
            "InvalidAttributeName");
}

TEST_F(api_test, deleted_queue_name_is_reusable_at_once_and_starts_empty) {
  auto url = create("q");
  send(url, "before");
  ok("DeleteQueue", {{"QueueUrl", url}});
  EXPECT_EQ(error_code("GetQueueAttributes", {{"QueueUrl", url}}), "QueueDoesNotExist");
  url = create("q");
  EXPECT_TRUE(receive(url).empty());
}

TEST_F(api_test, purge_is_allowed_once_per_minute) {
  auto url = create("q");
  send(url, "m");
  ok("PurgeQueue", {{"QueueUrl", url}});
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessages"), "0");
  EXPECT_EQ(error_code("PurgeQueue", {{"QueueUrl", url}}), "PurgeQueueInProgress");
  clk_.advance(61s);
  ok("PurgeQueue", {{"QueueUrl", url}});
}

TEST_F(api_test, list_queues_paginates_with_next_token) {
  for (int i = 0; i < 5; ++i) create("p" + std::to_string(i));
  create("other");
  auto page = ok("ListQueues", {{"QueueNamePrefix", "p"}, {"MaxResults", 3}});
  EXPECT_EQ(page.at("QueueUrls").as_array().size(), 3u);
  auto rest = ok("ListQueues", {{"QueueNamePrefix", "p"}, {"MaxResults", 3},
                                {"NextToken", page.at("NextToken")}});
  EXPECT_EQ(rest.at("QueueUrls").as_array().size(), 2u);
  EXPECT_FALSE(rest.contains("NextToken"));
}

TEST_F(api_test, change_visibility_of_a_message_not_in_flight_succeeds_and_changes_nothing) {
  auto url = create("q");
  send(url, "m");
  auto got = receive(url, 1, 30);
  auto h = got[0].at("ReceiptHandle");
  ok("ChangeMessageVisibility", {{"QueueUrl", url}, {"ReceiptHandle", h}, {"VisibilityTimeout", 0}});
  ok("ChangeMessageVisibility", {{"QueueUrl", url}, {"ReceiptHandle", h}, {"VisibilityTimeout", 10}});
  EXPECT_EQ(receive(url).size(), 1u);  // still visible
}

TEST_F(api_test, an_earlier_receipt_handle_changes_the_visibility_of_the_message_in_flight) {
  auto url = create("q");
  send(url, "m");
  auto first = receive(url, 1, 0)[0].at("ReceiptHandle");
  ASSERT_EQ(receive(url, 1, 300).size(), 1u);
  EXPECT_TRUE(receive(url).empty());
  ok("ChangeMessageVisibility",
     {{"QueueUrl", url}, {"ReceiptHandle", first}, {"VisibilityTimeout", 0}});
  EXPECT_EQ(receive(url).size(), 1u);
}

TEST_F(api_test, restart_restores_queues_messages_and_forgets_receives) {
  open(false);
  auto url = create("q", {{"VisibilityTimeout", "100"}});
  ok("TagQueue", {{"QueueUrl", url}, {"Tags", {{"team", "a"}}}});
  for (int i = 0; i < 5; ++i) send(url, "m" + std::to_string(i));
  auto got = receive(url, 2);
  ASSERT_EQ(got.size(), 2u);
  ok("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", got[0].at("ReceiptHandle")}});
  open(false);
  EXPECT_EQ(attr(url, "VisibilityTimeout"), "100");
  EXPECT_EQ(ok("ListQueueTags", {{"QueueUrl", url}}).at("Tags").at("team").as_string(), "a");
  auto after = receive(url, 10);
  EXPECT_EQ(after.size(), 4u);  // 5 sent, 1 deleted; the in-flight one is visible again
  for (auto& m : after) EXPECT_NE(m.at("Body"), got[0].at("Body"));
  // The message received before the restart keeps its receive count.
  int twice = 0;
  for (auto& m : after)
    twice += m.at("Attributes").at("ApproximateReceiveCount").as_string() == "2";
  EXPECT_EQ(twice, 1);
}

TEST_F(api_test, an_old_handle_never_deletes_a_new_message_after_a_restart) {
  open(false);
  auto url = create("q");
  send(url, "first");
  auto got = receive(url, 1, 0);
  ASSERT_EQ(got.size(), 1u);
  auto old = got[0].at("ReceiptHandle");
  ok("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", old}});
  open(false);  // the clock has not moved: sequence numbers may repeat, handles must not
  send(url, "second");
  ok("DeleteMessage", {{"QueueUrl", url}, {"ReceiptHandle", old}});
  EXPECT_EQ(attr(url, "ApproximateNumberOfMessages"), "1");
}

TEST_F(api_test, unknown_actions_and_unsupported_features_get_clear_errors) {
  EXPECT_EQ(error_code("Frobnicate", {}), "InvalidAction");
  EXPECT_EQ(error_code("AddPermission", {}), "UnsupportedOperation");
  EXPECT_EQ(error_code("SendMessage", {{"QueueUrl", "http://h/0/nope"}, {"MessageBody", "x"}}),
            "QueueDoesNotExist");
  auto url = create("q");
  EXPECT_EQ(error_code("SendMessage", {{"QueueUrl", url}}), "MissingParameter");
  EXPECT_EQ(error_code("ReceiveMessage", {{"QueueUrl", url}, {"MaxNumberOfMessages", 11}}),
            "InvalidParameterValue");
}

}  // namespace
}  // namespace sqsrelay::server
