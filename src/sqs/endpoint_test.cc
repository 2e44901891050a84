#include "sqs/endpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace sqsrelay::sqs {
namespace {

namespace fs = std::filesystem;
using env_map = std::map<std::string, std::string, std::less<>>;

// No real ~/.aws files leak into the tests.
env_map base_env() {
  return {{"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"},
          {"AWS_CONFIG_FILE", "/nonexistent/config"},
          {"AWS_EC2_METADATA_DISABLED", "true"}};
}

resolved_endpoint resolve(endpoint_request req, env_map env) {
  auto r = resolve_endpoint(req, aws::map_env(env));
  EXPECT_TRUE(r) << (r ? "" : r.error());
  return r ? *r : resolved_endpoint{};
}

TEST(endpoint, embedded_server_when_nothing_is_configured) {
  auto r = resolve({}, base_env());
  EXPECT_EQ(r.url, "http://127.0.0.1:9324");
  EXPECT_TRUE(r.loopback);
  EXPECT_EQ(r.region, "us-east-1");
}

TEST(endpoint, region_alone_selects_the_aws_endpoint) {
  auto env = base_env();
  env["AWS_DEFAULT_REGION"] = "eu-central-1";
  auto r = resolve({}, env);
  EXPECT_EQ(r.url, "https://sqs.eu-central-1.amazonaws.com");
  EXPECT_EQ(r.region, "eu-central-1");
  env["AWS_REGION"] = "ap-south-1";  // outranks AWS_DEFAULT_REGION
  EXPECT_EQ(resolve({}, env).region, "ap-south-1");
  endpoint_request flag;
  flag.region = "us-west-2";
  EXPECT_EQ(resolve(flag, env).url, "https://sqs.us-west-2.amazonaws.com");
}

TEST(endpoint, precedence_flag_then_service_env_then_global_env) {
  auto env = base_env();
  env["AWS_ENDPOINT_URL"] = "http://global:1";
  EXPECT_EQ(resolve({}, env).url, "http://global:1");
  env["AWS_ENDPOINT_URL_SQS"] = "http://service:2";
  EXPECT_EQ(resolve({}, env).source, "AWS_ENDPOINT_URL_SQS");
  endpoint_request req;
  req.endpoint_url = "https://flag.example";
  EXPECT_EQ(resolve(req, env).url, "https://flag.example");
  env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  EXPECT_EQ(resolve({}, env).url, "http://127.0.0.1:9324");
}

TEST(endpoint, config_file_services_section_and_endpoint_url) {
  auto dir = fs::temp_directory_path() / ("sqsrelay-endpoint-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config") << "[default]\nregion = eu-west-3\nservices = local\n"
                                   "ca_bundle = /etc/my-ca.pem\n"
                                   "[profile other]\nendpoint_url = http://other:7\n"
                                   "[services local]\nsqs =\n  endpoint_url = http://localhost:9400\n";
  auto env = base_env();
  env["AWS_CONFIG_FILE"] = (dir / "config").string();
  auto r = resolve({}, env);
  EXPECT_EQ(r.url, "http://localhost:9400");
  EXPECT_TRUE(r.loopback);
  EXPECT_EQ(r.region, "eu-west-3");
  EXPECT_EQ(r.ca_bundle, "/etc/my-ca.pem");
  endpoint_request other;
  other.profile = "other";
  EXPECT_EQ(resolve(other, env).url, "http://other:7");
  fs::remove_all(dir);
}

TEST(endpoint, queue_url_gives_endpoint_and_region) {
  auto env = base_env();
  env["AWS_REGION"] = "us-west-1";
  endpoint_request req;
  req.queue = "https://sqs.eu-west-2.amazonaws.com/123456789012/orders";
  auto r = resolve(req, env);
  EXPECT_EQ(r.url, "https://sqs.eu-west-2.amazonaws.com");
  EXPECT_EQ(r.region, "eu-west-2");
  EXPECT_FALSE(r.loopback);

  req.queue = "http://127.0.0.1:9324/000000000000/local";
  auto l = resolve(req, env);
  EXPECT_EQ(l.url, "http://127.0.0.1:9324");
  EXPECT_EQ(l.region, "us-west-1");
  EXPECT_TRUE(l.loopback);

  req.endpoint_url = "http://127.0.0.1:5555";  // an explicit endpoint outranks the queue URL
  EXPECT_EQ(resolve(req, env).url, "http://127.0.0.1:5555");
}

TEST(endpoint, the_path_of_an_endpoint_url_is_kept) {
  auto env = base_env();
  endpoint_request req;
  req.endpoint_url = "http://127.0.0.1:8080/sub/path";
  auto r = resolve(req, env);
  EXPECT_EQ(r.path, "/sub/path");
  EXPECT_EQ(r.url, "http://127.0.0.1:8080/sub/path");
  EXPECT_EQ(r.origin.port, 8080);
  req.endpoint_url = "http://127.0.0.1:8080/sub/path/";  // kept as written, as boto3 does
  EXPECT_EQ(resolve(req, env).path, "/sub/path/");
  req.endpoint_url = "http://127.0.0.1:8080/";
  EXPECT_EQ(resolve(req, env).path, "/");
  EXPECT_EQ(resolve(req, env).url, "http://127.0.0.1:8080");
  req.endpoint_url = "http://127.0.0.1:8080";
  EXPECT_EQ(resolve(req, env).path, "/");

  env["AWS_ENDPOINT_URL_SQS"] = "https://gw.example/prod/sqs";
  auto e = resolve({}, env);
  EXPECT_EQ(e.path, "/prod/sqs");
  EXPECT_EQ(e.origin.host, "gw.example");

  // A queue URL's path is the queue, never an endpoint prefix.
  endpoint_request q;
  q.queue = "http://127.0.0.1:9324/000000000000/orders";
  EXPECT_EQ(resolve(q, base_env()).path, "/");

  req.endpoint_url = "http://127.0.0.1:8080/p?x=1";
  auto bad = resolve_endpoint(req, aws::map_env(base_env()));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("query"), std::string::npos) << bad.error();
}

TEST(endpoint, ignore_configured_endpoint_urls_in_the_config_file) {
  auto dir = fs::temp_directory_path() / ("sqsrelay-endpoint-ign-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config") << "[default]\nignore_configured_endpoint_urls = true\n"
                                   "endpoint_url = http://configured:1\n"
                                   "[profile keep]\nendpoint_url = http://configured:2\n";
  auto env = base_env();
  env["AWS_CONFIG_FILE"] = (dir / "config").string();
  env["AWS_ENDPOINT_URL"] = "http://from-env:3";
  EXPECT_EQ(resolve({}, env).url, "http://127.0.0.1:9324");  // both env and config ignored
  endpoint_request keep;
  keep.profile = "keep";
  EXPECT_EQ(resolve(keep, env).url, "http://from-env:3");  // another profile's setting
  endpoint_request flag;
  flag.endpoint_url = "http://flag:4";  // the flag is never ignored
  EXPECT_EQ(resolve(flag, env).url, "http://flag:4");
  env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "false";  // the environment outranks the file
  EXPECT_EQ(resolve({}, env).url, "http://from-env:3");
  env.erase("AWS_ENDPOINT_URL");
  EXPECT_EQ(resolve({}, env).url, "http://configured:1");
  env["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  EXPECT_EQ(resolve(keep, env).url, "http://127.0.0.1:9324");
  fs::remove_all(dir);
}

TEST(endpoint, a_named_profile_that_does_not_exist_is_an_error) {
  auto dir = fs::temp_directory_path() / ("sqsrelay-endpoint-prof-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "credentials") << "[dev]\naws_access_key_id = a\naws_secret_access_key = b\n";
  auto env = base_env();
  env["AWS_SHARED_CREDENTIALS_FILE"] = (dir / "credentials").string();
  EXPECT_TRUE(resolve_endpoint({}, aws::map_env(env)));  // the implicit default may be absent
  endpoint_request dev;
  dev.profile = "dev";  // in the credentials file only: it exists
  EXPECT_TRUE(resolve_endpoint(dev, aws::map_env(env)));
  endpoint_request typo;
  typo.profile = "typo";
  auto r = resolve_endpoint(typo, aws::map_env(env));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("the config profile (typo) could not be found"), std::string::npos)
      << r.error();
  env["AWS_PROFILE"] = "typo";
  EXPECT_FALSE(resolve_endpoint({}, aws::map_env(env)));
  env["AWS_ACCESS_KEY_ID"] = "AKID";  // environment keys don't excuse it (botocore neither)
  env["AWS_SECRET_ACCESS_KEY"] = "s";
  EXPECT_FALSE(resolve_endpoint({}, aws::map_env(env)));
  fs::remove_all(dir);
}

TEST(endpoint, a_queue_url_with_any_path_gives_its_endpoint) {
  endpoint_request req;
  req.queue = "http://127.0.0.1:25814/q1";  // no account segment
  auto r = resolve(req, base_env());
  EXPECT_EQ(r.url, "http://127.0.0.1:25814");
  EXPECT_EQ(r.source, "the queue URL");
  req.queue = "http://127.0.0.1:25814/queue/q1/";  // ElasticMQ's legacy form
  EXPECT_EQ(resolve(req, base_env()).url, "http://127.0.0.1:25814");
  for (const char* no_name : {"http://127.0.0.1:25814", "http://127.0.0.1:25814/",
                              "https://sqs.us-east-1.amazonaws.com?x=1"}) {
    req.queue = no_name;
    auto bad = resolve_endpoint(req, aws::map_env(base_env()));
    ASSERT_FALSE(bad) << no_name;
    EXPECT_NE(bad.error().find("names no queue"), std::string::npos) << bad.error();
  }
}

TEST(endpoint, bad_urls_name_their_source) {
  auto env = base_env();
  env["AWS_ENDPOINT_URL_SQS"] = "ftp://nope";
  auto r = resolve_endpoint({}, aws::map_env(env));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("AWS_ENDPOINT_URL_SQS"), std::string::npos) << r.error();
}

TEST(endpoint, region_from_host_names) {
  EXPECT_EQ(region_from_host("sqs.us-east-2.amazonaws.com"), "us-east-2");
  EXPECT_EQ(region_from_host("sqs.cn-north-1.amazonaws.com.cn"), "cn-north-1");
  EXPECT_EQ(region_from_host("sqs-fips.us-gov-west-1.amazonaws.com"), "us-gov-west-1");
  EXPECT_EQ(region_from_host("eu-west-1.queue.amazonaws.com"), "eu-west-1");
  EXPECT_EQ(region_from_host("localhost"), "");
  EXPECT_EQ(region_from_host("sqs.example.com"), "");
}

template <class T>
T run(boost::asio::io_context& ioc, boost::asio::awaitable<T> a) {
  std::optional<T> out;
  boost::asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(v));
  });
  while (!out) {
    if (ioc.stopped()) ioc.restart();
    ioc.run_one();
  }
  return std::move(*out);
}

TEST(endpoint, loopback_endpoints_fall_back_to_placeholder_credentials) {
  boost::asio::io_context ioc{1};
  auto http = std::move(*http::client::create(ioc.get_executor(), {}));
  auto local = resolve({}, base_env());
  auto chain = make_client_chain(ioc.get_executor(), aws::map_env(base_env()), *http,
                                 system_clock::instance(), local, "");
  auto c = run(ioc, chain->get());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_NE((*c)->provider.find("placeholder"), std::string::npos);

  // A remote endpoint never gets placeholders: the error lists what was tried.
  endpoint_request remote_req;
  remote_req.endpoint_url = "https://sqs.eu-west-1.amazonaws.com";
  auto remote = resolve(remote_req, base_env());
  auto strict = make_client_chain(ioc.get_executor(), aws::map_env(base_env()), *http,
                                  system_clock::instance(), remote, "");
  auto e = run(ioc, strict->get());
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("environment"), std::string::npos) << e.error().message;
  EXPECT_NE(e.error().message.find("imds"), std::string::npos) << e.error().message;

  // Real credentials win over the placeholder.
  auto env = base_env();
  env["AWS_ACCESS_KEY_ID"] = "AKIDREAL";
  env["AWS_SECRET_ACCESS_KEY"] = "s";
  auto real = make_client_chain(ioc.get_executor(), aws::map_env(env), *http,
                                system_clock::instance(), local, "");
  auto rc = run(ioc, real->get());
  ASSERT_TRUE(rc);
  EXPECT_EQ((*rc)->creds.access_key_id, "AKIDREAL");
}

}  // namespace
}  // namespace sqsrelay::sqs
