// The credential providers and the refreshing chain, against fake container and instance
// metadata endpoints served on loopback by the project's own HTTP server.
#include "aws/credential_chain.h"

#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "http/client.h"
#include "http/server.h"

namespace sqsrelay::aws {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string iso8601(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// A fake metadata service: IMDSv2 (token PUT, role listing, role credentials) and a container
// credentials path, with each issue numbered so refreshes are visible.
struct fake_metadata {
  explicit fake_metadata(const clock& c) : clk(c) {}
  const clock& clk;
  int issued = 0;
  int token_puts = 0;
  int requests = 0;
  std::chrono::seconds lifetime{3600};
  std::string container_token = "container-secret-token";
  int fail_status = 0;  // when set, every request is answered with this status

  std::string creds_json() {
    ++issued;
    return fmt::format(
        R"({{"Code":"Success","AccessKeyId":"AKID{}","SecretAccessKey":"secret{}",)"
        R"("Token":"token{}","Expiration":"{}"}})",
        issued, issued, issued, iso8601(clk.wall() + lifetime));
  }

  http::response handle(const http::request& req) {
    ++requests;
    http::response res{boost::beast::http::status::ok, 11};
    auto answer = [&](int status, std::string body) {
      res.result(static_cast<unsigned>(status));
      res.body() = std::move(body);
      res.prepare_payload();
      return res;
    };
    if (fail_status) return answer(fail_status, "failing on purpose");
    std::string target(req.target());
    std::string token(req["X-aws-ec2-metadata-token"]);
    if (target == "/latest/api/token") {
      if (req.method() != boost::beast::http::verb::put ||
          req["X-aws-ec2-metadata-token-ttl-seconds"].empty())
        return answer(400, "bad token request");
      ++token_puts;
      return answer(200, "imds-token");
    }
    if (target.rfind("/latest/meta-data/", 0) == 0 && token != "imds-token")
      return answer(401, "");
    if (target == "/latest/meta-data/iam/security-credentials/") return answer(200, "the-role\n");
    if (target == "/latest/meta-data/iam/security-credentials/the-role")
      return answer(200, creds_json());
    if (target == "/container/creds") {
      if (req["Authorization"] != container_token) return answer(403, "bad token");
      return answer(200, creds_json());
    }
    return answer(404, "");
  }
};

// A plain function, not a capturing lambda, as the coroutine (STYLE.md rule 10).
asio::awaitable<http::response> serve_fake(fake_metadata* m, http::request r) {
  co_return m->handle(r);
}

class credential_chain_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("sqsrelay-cred-{}-{}", ::getpid(),
                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    http::server_options ho;
    srv_ = std::make_unique<http::server>(
        std::vector<asio::io_context*>{&ioc_}, ho,
        [this](http::request r, http::peer_info) { return serve_fake(&meta_, std::move(r)); },
        [](int s, std::string_view) {
          return http::response{static_cast<boost::beast::http::status>(s), 11};
        });
    ASSERT_TRUE(srv_->start());
    base_ = fmt::format("http://127.0.0.1:{}", srv_->port());
    http_ = std::move(*http::client::create(ioc_.get_executor(), {}));
  }
  void TearDown() override {
    http_.reset();
    srv_->stop();
    ioc_.poll();
    fs::remove_all(dir_);
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
  void drain() {
    if (ioc_.stopped()) ioc_.restart();
    for (int i = 0; i < 200 && ioc_.poll() > 0;) ++i;
  }

  credential_result<timed_credentials> fetch(credential_provider& p) { return run(p.fetch()); }

  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  asio::io_context ioc_{1};
  manual_clock clock_{std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000))};
  fake_metadata meta_{clock_};
  std::unique_ptr<http::server> srv_;
  std::unique_ptr<http::client> http_;
  std::string base_;
  fs::path dir_;
};

TEST_F(credential_chain_test, environment_provider) {
  auto p = make_env_provider(map_env({{"AWS_ACCESS_KEY_ID", "AKIDENV"},
                                      {"AWS_SECRET_ACCESS_KEY", "envsecret"},
                                      {"AWS_SESSION_TOKEN", "envtoken"}}));
  auto r = fetch(*p);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->creds.access_key_id, "AKIDENV");
  EXPECT_EQ(r->creds.secret_access_key.reveal(), "envsecret");
  EXPECT_EQ(r->creds.session_token, "envtoken");
  EXPECT_FALSE(r->expiration);

  auto none = fetch(*make_env_provider(map_env({})));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, credential_error::not_found);

  auto half = fetch(*make_env_provider(map_env({{"AWS_ACCESS_KEY_ID", "AKIDENV"}})));
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().kind, credential_error::failed);
  EXPECT_NE(half.error().message.find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST_F(credential_chain_test, profiles_from_credentials_and_config_files) {
  auto creds = write("credentials",
                     "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"
                     "# comment\n[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key=devsecret\n"
                     "aws_session_token = devtoken\n");
  auto config = write("config",
                      "[profile dev]\nregion = eu-west-1\n"
                      "[profile cfgonly]\naws_access_key_id = AKIDCFG\n"
                      "aws_secret_access_key = cfgsecret\n"
                      "[profile role]\nrole_arn = arn:aws:iam::1:role/x\n"
                      "[services local]\nsqs =\n  endpoint_url = http://127.0.0.1:9999\n");
  std::map<std::string, std::string, std::less<>> vars{{"AWS_SHARED_CREDENTIALS_FILE", creds},
                                                        {"AWS_CONFIG_FILE", config}};
  auto with = [&](std::string profile) {
    auto v = vars;
    v["AWS_PROFILE"] = profile;
    return map_env(v);
  };
  auto dev = fetch(*make_profile_provider(with("dev"), ""));
  ASSERT_TRUE(dev) << dev.error().message;
  EXPECT_EQ(dev->creds.access_key_id, "AKIDDEV");
  EXPECT_EQ(dev->creds.session_token, "devtoken");
  EXPECT_EQ(dev->provider, "profile dev");

  auto def = fetch(*make_profile_provider(map_env(vars), ""));
  ASSERT_TRUE(def);
  EXPECT_EQ(def->creds.access_key_id, "AKIDDEFAULT");

  auto cfg = fetch(*make_profile_provider(map_env(vars), "cfgonly"));  // explicit profile
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->creds.secret_access_key.reveal(), "cfgsecret");

  auto missing = fetch(*make_profile_provider(with("nope"), ""));  // named: a typo
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, credential_error::failed);
  EXPECT_NE(missing.error().message.find("the config profile (nope) could not be found"),
            std::string::npos)
      << missing.error().message;

  auto role = fetch(*make_profile_provider(with("role"), ""));
  ASSERT_FALSE(role);
  EXPECT_EQ(role.error().kind, credential_error::failed);
  EXPECT_NE(role.error().message.find("role_arn"), std::string::npos);

  profile_files f = load_profile_files(map_env(vars));
  auto svc = find_services(f, "local");
  ASSERT_TRUE(svc);
  EXPECT_EQ(svc->at("sqs.endpoint_url"), "http://127.0.0.1:9999");
  EXPECT_EQ(find_profile(f, "dev")->at("region"), "eu-west-1");
}

TEST_F(credential_chain_test, a_named_profile_that_does_not_exist_is_an_error_the_default_is_not) {
  std::map<std::string, std::string, std::less<>> vars{
      {"AWS_SHARED_CREDENTIALS_FILE", (dir_ / "none").string()},
      {"AWS_CONFIG_FILE", (dir_ / "none2").string()}};
  auto implicit = fetch(*make_profile_provider(map_env(vars), ""));
  ASSERT_FALSE(implicit);
  EXPECT_EQ(implicit.error().kind, credential_error::not_found);

  auto flag = fetch(*make_profile_provider(map_env(vars), "typo"));  // --profile typo
  ASSERT_FALSE(flag);
  EXPECT_EQ(flag.error().kind, credential_error::failed);
  for (const char* var : {"AWS_PROFILE", "AWS_DEFAULT_PROFILE"}) {
    for (const char* name : {"typo", "default"}) {  // a named "default" too, as botocore
      auto v = vars;
      v[var] = name;
      auto r = fetch(*make_profile_provider(map_env(v), ""));
      ASSERT_FALSE(r) << var << "=" << name;
      EXPECT_EQ(r.error().kind, credential_error::failed) << var << "=" << name;
    }
  }
}

TEST_F(credential_chain_test, a_missing_named_profile_never_falls_through_to_the_instance_role) {
  auto env = map_env({{"AWS_SHARED_CREDENTIALS_FILE", (dir_ / "none").string()},
                      {"AWS_CONFIG_FILE", (dir_ / "none2").string()},
                      {"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_},
                      {"AWS_CONTAINER_CREDENTIALS_FULL_URI", base_ + "/container/creds"},
                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", meta_.container_token}});
  auto chain = make_default_chain(ioc_.get_executor(), env, *http_, clock_, "typo");
  auto r = run(chain->get());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("profile (typo) could not be found"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(meta_.requests, 0);  // neither the container endpoint nor IMDS was asked

  auto implicit = make_default_chain(ioc_.get_executor(), env, *http_, clock_);
  auto c = run(implicit->get());  // no profile named: on to the container credentials
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ((*c)->provider, "container");
}

TEST_F(credential_chain_test, container_endpoint_with_token_file) {
  auto token_file = write("token", meta_.container_token + "\n");
  auto env = map_env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", base_ + "/container/creds"},
                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file},
                      {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-file-set"}});
  auto p = make_container_provider(env, *http_);
  auto r = fetch(*p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->creds.access_key_id, "AKID1");
  EXPECT_EQ(r->creds.session_token, "token1");
  ASSERT_TRUE(r->expiration);
  EXPECT_EQ(*r->expiration, clock_.wall() + 3600s);

  auto wrong = make_container_provider(
      map_env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", base_ + "/container/creds"},
               {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong"}}),
      *http_);
  auto refused = fetch(*wrong);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, credential_error::failed);
  EXPECT_NE(refused.error().message.find("403"), std::string::npos);

  auto remote = make_container_provider(
      map_env({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com/creds"}}), *http_);
  auto bad_host = fetch(*remote);
  ASSERT_FALSE(bad_host);
  EXPECT_NE(bad_host.error().message.find("loopback"), std::string::npos);
}

TEST_F(credential_chain_test, imds_v2_token_role_and_credentials) {
  auto p = make_imds_provider(map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_ + "/"}}),
                              *http_);
  auto r = fetch(*p);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->creds.access_key_id, "AKID1");
  EXPECT_EQ(r->provider, "imds role the-role");
  EXPECT_EQ(meta_.token_puts, 1);
  EXPECT_EQ(meta_.requests, 3);

  auto off = fetch(*make_imds_provider(
      map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_}, {"AWS_EC2_METADATA_DISABLED", "true"}}),
      *http_));
  ASSERT_FALSE(off);
  EXPECT_EQ(off.error().kind, credential_error::not_found);
  EXPECT_EQ(meta_.requests, 3);  // not contacted
}

TEST_F(credential_chain_test, chain_names_every_provider_when_nothing_is_found) {
  auto env = map_env({{"AWS_EC2_METADATA_DISABLED", "true"},
                      {"AWS_SHARED_CREDENTIALS_FILE", (dir_ / "none").string()},
                      {"AWS_CONFIG_FILE", (dir_ / "none2").string()}});
  auto chain = make_default_chain(ioc_.get_executor(), env, *http_, clock_);
  auto r = run(chain->get());
  ASSERT_FALSE(r);
  for (const char* name : {"environment", "profile default", "container", "imds"})
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
}

TEST_F(credential_chain_test, chain_stops_at_a_configured_provider_that_fails) {
  std::vector<std::unique_ptr<credential_provider>> p;
  p.push_back(make_env_provider(map_env({{"AWS_ACCESS_KEY_ID", "AKIDONLY"}})));
  p.push_back(make_static_provider({"AKIDSTATIC", secret_string("s"), {}}, "static"));
  credential_chain chain(ioc_.get_executor(), std::move(p), clock_);
  auto r = run(chain.get());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("environment"), std::string::npos);
}

TEST_F(credential_chain_test, refreshes_ahead_of_expiry_in_the_background_then_on_demand) {
  meta_.lifetime = 600s;
  std::vector<std::unique_ptr<credential_provider>> p;
  p.push_back(make_imds_provider(map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_}}), *http_));
  credential_chain chain(ioc_.get_executor(), std::move(p), clock_);

  auto a = run(chain.get());
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ((*a)->creds.access_key_id, "AKID1");
  EXPECT_EQ(chain.fetches(), 1u);

  clock_.advance(240s);  // 6 min left: cached
  auto b = run(chain.get());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->get(), a->get());
  EXPECT_EQ(chain.fetches(), 1u);

  clock_.advance(120s);  // 4 min left: served now, refreshed in the background
  auto c = run(chain.get());
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)->creds.access_key_id, "AKID1");
  drain();
  EXPECT_EQ(chain.fetches(), 2u);
  auto d = run(chain.get());
  ASSERT_TRUE(d);
  EXPECT_EQ((*d)->creds.access_key_id, "AKID2");

  clock_.advance(570s);  // 30 s left of AKID2: callers wait for new credentials
  auto e = run(chain.get());
  ASSERT_TRUE(e);
  EXPECT_EQ((*e)->creds.access_key_id, "AKID3");
  EXPECT_EQ(chain.fetches(), 3u);
}

TEST_F(credential_chain_test, failed_background_refresh_keeps_current_credentials) {
  meta_.lifetime = 600s;
  std::vector<std::unique_ptr<credential_provider>> p;
  p.push_back(make_imds_provider(map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_}}), *http_));
  credential_chain chain(ioc_.get_executor(), std::move(p), clock_);
  ASSERT_TRUE(run(chain.get()));
  meta_.fail_status = 500;
  clock_.advance(400s);  // advisory window
  auto b = run(chain.get());
  ASSERT_TRUE(b);
  drain();
  EXPECT_EQ(chain.fetches(), 2u);
  auto c = run(chain.get());
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)->creds.access_key_id, "AKID1");
  drain();
  EXPECT_EQ(chain.fetches(), 2u);  // backing off: no refresh per call while failing
  clock_.advance(11s);
  ASSERT_TRUE(run(chain.get()));
  drain();
  EXPECT_EQ(chain.fetches(), 3u);
  clock_.advance(169s);  // 20 s left and the service still fails: a clear error
  auto d = run(chain.get());
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("imds"), std::string::npos) << d.error().message;
}

TEST_F(credential_chain_test, short_lived_credentials_are_refetched_at_most_every_interval) {
  meta_.lifetime = 120s;  // inside the 5 min refresh window from the start
  std::vector<std::unique_ptr<credential_provider>> p;
  p.push_back(make_imds_provider(map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_}}), *http_));
  chain_options o;
  o.min_refresh_interval = 30s;
  credential_chain chain(ioc_.get_executor(), std::move(p), clock_, o);
  ASSERT_TRUE(run(chain.get()));
  for (int i = 0; i < 100; ++i) {  // a busy sender: many calls, each followed by I/O
    ASSERT_TRUE(run(chain.get()));
    drain();
    if (i % 10 == 9) clock_.advance(2s);  // 20 s in all
  }
  EXPECT_EQ(chain.fetches(), 1u);
  EXPECT_EQ(meta_.token_puts, 1);

  clock_.advance(11s);  // 31 s after the fetch, 89 s left: one background refresh
  auto a = run(chain.get());
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)->creds.access_key_id, "AKID1");
  drain();
  EXPECT_EQ(chain.fetches(), 2u);
  for (int i = 0; i < 20; ++i) {
    auto b = run(chain.get());
    ASSERT_TRUE(b);
    EXPECT_EQ((*b)->creds.access_key_id, "AKID2");
    drain();
  }
  EXPECT_EQ(chain.fetches(), 2u);

  // Credentials shorter-lived than the mandatory window (60 s) are used up to their expiry
  // without a blocking fetch per call, then fetched again.
  meta_.lifetime = 40s;
  chain.invalidate();
  ASSERT_TRUE(run(chain.get()));
  EXPECT_EQ(chain.fetches(), 3u);
  for (int i = 0; i < 20; ++i) {
    clock_.advance(1s);
    auto c = run(chain.get());
    ASSERT_TRUE(c);
    EXPECT_EQ((*c)->creds.access_key_id, "AKID3");
    drain();
  }
  EXPECT_EQ(chain.fetches(), 3u);
  clock_.advance(20s);  // AKID3 has expired
  auto d = run(chain.get());
  ASSERT_TRUE(d);
  EXPECT_EQ((*d)->creds.access_key_id, "AKID4");
  EXPECT_EQ(chain.fetches(), 4u);
}

TEST_F(credential_chain_test, credentials_that_arrive_expired_are_an_error) {
  meta_.lifetime = -5s;
  std::vector<std::unique_ptr<credential_provider>> p;
  p.push_back(make_imds_provider(map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_}}), *http_));
  credential_chain chain(ioc_.get_executor(), std::move(p), clock_);
  auto r = run(chain.get());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("expired 5 s ago"), std::string::npos) << r.error().message;
  auto again = run(chain.get());  // within min_retry_interval: the same error, no fetch
  ASSERT_FALSE(again);
  EXPECT_EQ(chain.fetches(), 1u);
}

TEST_F(credential_chain_test, concurrent_callers_share_one_fetch) {
  std::vector<std::unique_ptr<credential_provider>> p;
  p.push_back(make_imds_provider(map_env({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", base_}}), *http_));
  credential_chain chain(ioc_.get_executor(), std::move(p), clock_);
  int done = 0;
  std::vector<std::string> keys;
  for (int i = 0; i < 5; ++i) {
    asio::co_spawn(ioc_, chain.get(),
                   [&](std::exception_ptr,
                       credential_result<std::shared_ptr<const timed_credentials>> r) {
                     ++done;
                     if (r) keys.push_back((*r)->creds.access_key_id);
                   });
  }
  while (done < 5) ioc_.run_one();
  EXPECT_EQ(chain.fetches(), 1u);
  ASSERT_EQ(keys.size(), 5u);
  for (auto& k : keys) EXPECT_EQ(k, "AKID1");
}

TEST(credential_json, parse_and_errors) {
  auto r = parse_credentials_json(
      R"({"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2026-11-21T10:00:00Z"})",
      "x");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r->expiration, *parse_iso8601("2026-11-21T10:00:00.000Z"));
  EXPECT_EQ(r->expiration->time_since_epoch(), std::chrono::seconds(1795255200));
  EXPECT_FALSE(parse_credentials_json("{}", "x"));
  EXPECT_FALSE(parse_credentials_json("not json", "x"));
  EXPECT_FALSE(parse_credentials_json(R"({"Code":"Failure"})", "x"));
  EXPECT_FALSE(parse_iso8601("2026-13-01T00:00:00Z"));
  // The secret never shows up in an error message.
  auto bad = parse_credentials_json(
      R"({"AccessKeyId":"A","SecretAccessKey":"TOPSECRET","Expiration":"soon"})", "x");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.find("TOPSECRET"), std::string::npos);
}

}  // namespace
}  // namespace sqsrelay::aws
