#include "config/relay_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sqsrelay::config {
namespace {

using namespace std::chrono_literals;

std::optional<relay_config> load(std::string_view text, config_error& err) {
  return load_string(text, "relay.toml", err);
}

// Loads `text` expecting an error; returns it.
config_error error_of(std::string_view text) {
  config_error err;
  auto c = load(text, err);
  EXPECT_FALSE(c) << "loaded without error:\n" << text;
  return err;
}

constexpr std::string_view flespi_config = R"(
[spool]
dir = "/var/lib/sqsrelay/spool"
disk_budget = "20GiB"
segment_size = 134217728

[sender]
linger = "10ms"
max_in_flight = 32
missing_queue_grace = "2m"
ack_delivered_timeout = "45s"

[metrics]
listen = "127.0.0.1:9191"

[endpoints.aws]
url = "https://sqs.eu-west-1.amazonaws.com"
region = "eu-west-1"
profile = "ingest"

[[sources.http]]
name = "gateway"
listen = "0.0.0.0:8080"
tokens = ["tok-1", "tok-2"]
token_header = "X-Ingest-Token"
allow_cidrs = ["10.0.0.0/8", "2001:db8::/32"]
max_body_bytes = "16MiB"
default_endpoint = "aws"

[[sources.http.routes]]
path = "/flespi"
queue = "telemetry"
endpoint = "aws"
on_invalid = "dead_letter"
ack = "delivered"

[[sources.http.routes.attributes]]
field = "ident"
name = "ident"
required = true

[[sources.http.routes.attributes]]
field = "/position/speed"
name = "speed"
type = "Number"

[[sources.http.routes]]
path = "/local"
queue = "jobs.fifo"
endpoint = "embedded"
group_id_field = "tenant"
format = "ndjson"

[sources.http.queue_route_options]
max_message_bytes = "256KiB"
)";

TEST(RelayConfig, FullExample) {
  config_error err;
  auto c = load(flespi_config, err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->spool.dir, "/var/lib/sqsrelay/spool");
  EXPECT_EQ(c->spool.disk_budget, 20ull << 30);
  EXPECT_EQ(c->spool.segment_bytes, 128ull << 20);
  EXPECT_EQ(c->sender.linger, 10ms);
  EXPECT_EQ(c->sender.max_in_flight, 32u);
  EXPECT_EQ(c->sender.missing_queue_grace, std::chrono::seconds(120));
  EXPECT_EQ(c->sender.ack_delivered_timeout, std::chrono::seconds(45));
  EXPECT_EQ(c->metrics.listen, "127.0.0.1:9191");
  ASSERT_EQ(c->endpoints.size(), 2u);
  ASSERT_TRUE(c->endpoint("aws"));
  EXPECT_EQ(c->endpoint("aws")->region, "eu-west-1");
  EXPECT_EQ(c->endpoint("embedded")->url, "embedded");
  ASSERT_EQ(c->http_sources.size(), 1u);
  const auto& s = c->http_sources[0];
  EXPECT_EQ(s.name, "gateway");
  EXPECT_EQ(s.tokens, (std::vector<std::string>{"tok-1", "tok-2"}));
  EXPECT_EQ(s.token_header, "X-Ingest-Token");
  EXPECT_EQ(s.max_body_bytes, 16u << 20);
  EXPECT_EQ(s.queue_route_defaults.max_message_bytes, 256u << 10);
  ASSERT_EQ(s.routes.size(), 2u);
  ASSERT_EQ(s.route_configs.size(), 2u);
  EXPECT_EQ(s.route_configs[0].endpoint, "aws");
  EXPECT_EQ(s.route_configs[1].endpoint, "embedded");
  const auto& r = s.routes[0];
  EXPECT_EQ(r.queue, "telemetry");
  EXPECT_EQ(r.on_invalid, sources::invalid_policy::dead_letter);
  EXPECT_EQ(r.ack, sources::ack_mode::delivered);
  ASSERT_EQ(r.attributes.size(), 2u);
  EXPECT_EQ(r.attributes[0].field, "/ident");  // normalized to a pointer
  EXPECT_EQ(r.attributes[0].data_type, "String");
  EXPECT_TRUE(r.attributes[0].required);
  EXPECT_EQ(r.attributes[1].data_type, "Number");
  EXPECT_EQ(s.routes[1].format, sources::body_format::ndjson);
  EXPECT_EQ(s.routes[1].group_id_field, "/tenant");
  EXPECT_EQ(s.route_configs[1].group_id_field, "/tenant");
}

TEST(RelayConfig, EmptyFileGivesDefaults) {
  config_error err;
  auto c = load("", err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->spool.dir, "./sqsrelay-spool");
  EXPECT_EQ(c->spool.disk_budget, 10ull << 30);
  EXPECT_EQ(c->sender.linger, 5ms);
  EXPECT_EQ(c->sender.missing_queue_grace, std::chrono::minutes(5));
  EXPECT_EQ(c->sender.ack_delivered_timeout, std::chrono::seconds(30));
  EXPECT_TRUE(c->http_sources.empty());
  EXPECT_EQ(c->endpoints.size(), 1u);
}

TEST(RelayConfig, SyntaxErrorHasLineAndColumn) {
  auto err = error_of("[spool]\ndir = \"unterminated\n");
  EXPECT_EQ(err.file, "relay.toml");
  EXPECT_EQ(err.line, 2u);
  EXPECT_GT(err.column, 0u);
  EXPECT_EQ(err.to_string().rfind("relay.toml:2:", 0), 0u) << err.to_string();
}

TEST(RelayConfig, UnknownKeyNamesKeyLineAndKnownKeys) {
  auto err = error_of("[spool]\ndir = \"x\"\ndisk_bugdet = \"1GiB\"\n");
  EXPECT_EQ(err.line, 3u);
  EXPECT_EQ(err.column, 1u);
  EXPECT_EQ(err.key, "spool.disk_bugdet");
  EXPECT_EQ(err.to_string(),
            "relay.toml:3:1: spool.disk_bugdet: unknown key 'disk_bugdet' (known here: dir, "
            "disk_budget, segment_size)");
}

TEST(RelayConfig, UnknownKeyInARoute) {
  auto err = error_of(R"(
[[sources.http]]
[[sources.http.routes]]
path = "/a"
queue = "q"
queu = "typo"
)");
  EXPECT_EQ(err.line, 6u);
  EXPECT_EQ(err.key, "sources.http[0].routes[0].queu");
}

TEST(RelayConfig, UnknownSectionAndSourceKind) {
  auto err = error_of("[spoool]\ndir = \"x\"\n");
  EXPECT_EQ(err.line, 1u);
  EXPECT_NE(err.message.find("unknown section 'spoool'"), std::string::npos);
  err = error_of("[[sources.directory]]\npath = \"/in\"\n");
  EXPECT_NE(err.message.find("source kind 'directory' is not available"), std::string::npos);
  EXPECT_EQ(err.key, "sources.directory");
}

TEST(RelayConfig, WrongTypes) {
  auto err = error_of("[sender]\nmax_in_flight = \"many\"\n");
  EXPECT_EQ(err.line, 2u);
  EXPECT_EQ(err.key, "sender.max_in_flight");
  EXPECT_EQ(err.message, "expected an integer, got \"many\"");
  err = error_of("[sender]\nlinger = 5\n");
  EXPECT_EQ(err.message,
            "expected a duration string like \"5ms\", \"2s\" or \"1m\", got an integer");
  err = error_of("[[sources.http]]\ntokens = \"just-one\"\n");
  EXPECT_EQ(err.message, "expected an array of strings, got \"just-one\"");
  err = error_of("[[sources.http]]\nallow_insecure = \"yes\"\n");
  EXPECT_EQ(err.message, "expected true or false, got \"yes\"");
  err = error_of("spool = 3\n");
  EXPECT_EQ(err.message, "must be a table ([spool])");
  err = error_of("[sources]\nhttp = 1\n");
  EXPECT_EQ(err.message, "must be an array of tables ([[sources.http]])");
}

TEST(RelayConfig, OutOfRangeValues) {
  auto err = error_of("[sender]\nmax_in_flight = 0\n");
  EXPECT_EQ(err.message, "must be from 1 to 4096, not 0");
  err = error_of("[spool]\ndisk_budget = \"1KiB\"\n");
  EXPECT_EQ(err.message, "must be from 1MiB to 1024TiB");
  err = error_of("[spool]\ndisk_budget = \"lots\"\n");
  EXPECT_NE(err.message.find("expected a size"), std::string::npos);
  err = error_of("[[sources.http]]\nretry_after = \"1500ms\"\n");
  EXPECT_EQ(err.message, "must be a whole multiple of 1s");
  err = error_of("[spool]\ndisk_budget = \"64MiB\"\nsegment_size = \"128MiB\"\n");
  EXPECT_EQ(err.key, "spool.segment_size");
  EXPECT_EQ(err.line, 3u);  // the segment_size line, not the file's first
  EXPECT_EQ(err.message, "must not be larger than spool.disk_budget");
}

TEST(RelayConfig, SmallBudgetAloneClampsTheDefaultSegmentSize) {
  config_error err;
  auto c = load("[spool]\ndisk_budget = \"32MiB\"\n", err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->spool.segment_bytes, 8ull << 20);
  c = load("[spool]\ndisk_budget = \"1GiB\"\n", err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->spool.segment_bytes, 64ull << 20);  // the default fits
  c = load("[spool]\ndisk_budget = \"32MiB\"\nsegment_size = \"16MiB\"\n", err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->spool.segment_bytes, 16ull << 20);  // set explicitly: kept (the spool clamps)
}

TEST(RelayConfig, ARouteWithoutEndpointUsesItsListenersDefault) {
  config_error err;
  auto c = load(R"([endpoints.aws]
url = "https://sqs.eu-west-1.amazonaws.com"

[[sources.http]]
default_endpoint = "aws"
[[sources.http.routes]]
path = "/a"
queue = "q"
[[sources.http.routes]]
path = "/b"
queue = "q"
endpoint = "embedded"
)",
                err);
  ASSERT_TRUE(c) << err.to_string();
  ASSERT_EQ(c->http_sources.size(), 1u);
  ASSERT_EQ(c->http_sources[0].route_configs.size(), 2u);
  EXPECT_EQ(c->http_sources[0].route_configs[0].endpoint, "aws");
  EXPECT_EQ(c->http_sources[0].route_configs[1].endpoint, "embedded");
}

TEST(RelayConfig, ARemoteMetricsListenerNeedsAnOptIn) {
  auto err = error_of("[metrics]\nlisten = \"0.0.0.0:9191\"\n");
  EXPECT_EQ(err.line, 2u);
  EXPECT_EQ(err.key, "metrics.listen");
  EXPECT_NE(err.message.find("allow_remote = true"), std::string::npos) << err.message;
  config_error e;
  auto c = load("[metrics]\nlisten = \"0.0.0.0:9191\"\nallow_remote = true\n", e);
  ASSERT_TRUE(c) << e.to_string();
  EXPECT_TRUE(c->metrics.allow_remote);
  c = load("[metrics]\nlisten = \"[::1]:9191\"\n", e);
  ASSERT_TRUE(c) << e.to_string();
  err = error_of("[metrics]\nlisten = \"nowhere\"\n");
  EXPECT_EQ(err.key, "metrics.listen");
}

TEST(RelayConfig, BadChoice) {
  auto err = error_of(
      "[[sources.http]]\n[[sources.http.routes]]\npath = \"/a\"\nqueue = "
      "\"q\"\non_invalid = \"drop\"\n");
  EXPECT_EQ(err.line, 5u);
  EXPECT_EQ(err.message, "expected one of reject | dead_letter, got \"drop\"");
}

TEST(RelayConfig, DuplicateRoutesPointAtTheSecond) {
  auto err = error_of(R"([[sources.http]]
[[sources.http.routes]]
path = "/flespi"
queue = "a"
[[sources.http.routes]]
path = "/flespi"
queue = "b"
)");
  EXPECT_EQ(err.line, 6u);  // the second route's path line
  EXPECT_EQ(err.key, "sources.http[0].routes[1].path");
  EXPECT_EQ(err.message, "route '/flespi' is declared twice");
}

TEST(RelayConfig, UndefinedEndpointAndBadUrl) {
  auto err = error_of(R"([[sources.http]]
[[sources.http.routes]]
path = "/a"
queue = "q"
endpoint = "prod"
)");
  EXPECT_EQ(err.key, "sources.http[0].routes[0].endpoint");
  EXPECT_EQ(err.message, "no endpoint named 'prod'");
  err = error_of("[endpoints.prod]\nurl = \"sqs.amazonaws.com\"\n");
  EXPECT_EQ(err.line, 2u);
  EXPECT_EQ(err.key, "endpoints.prod.url");
  EXPECT_NE(err.message.find("neither \"embedded\" nor an http"), std::string::npos);
}

TEST(RelayConfig, RouteNeedsPathAndQueue) {
  auto err = error_of("[[sources.http]]\n[[sources.http.routes]]\npath = \"/a\"\n");
  EXPECT_EQ(err.line, 2u);
  EXPECT_EQ(err.message, "a route needs both path and queue");
}

TEST(RelayConfig, IngestValidationErrorsNameTheSource) {
  auto err = error_of(R"([[sources.http]]
allow_cidrs = ["10.0.0.0/40"]
)");
  EXPECT_EQ(err.line, 2u);  // the element's own line and column
  EXPECT_EQ(err.column, 16u);
  EXPECT_EQ(err.key, "sources.http[0].allow_cidrs[0]");
  EXPECT_NE(err.message.find("'10.0.0.0/40'"), std::string::npos) << err.message;
  err = error_of(R"([[sources.http]]
trusted_proxies = ["10.0.0.1",
  "nonsense"]
)");
  EXPECT_EQ(err.line, 3u);
  EXPECT_EQ(err.key, "sources.http[0].trusted_proxies[1]");
  err = error_of(R"([[sources.http]]
[[sources.http.routes]]
path = "/a"
queue = "q"
[[sources.http.routes]]
path = "/f"
queue = "q.fifo"
)");
  EXPECT_EQ(err.message, "route '/f': FIFO queue 'q.fifo' needs group_id_field");
  EXPECT_EQ(err.key, "sources.http[0].routes[1].queue");
  EXPECT_EQ(err.line, 7u);
  err = error_of(R"([[sources.http]]
[[sources.http.routes]]
path = "/a"
queue = "q"
[sources.http.queue_route_options]
format = "json"
max_message_bytes = "2MiB"
)");
  EXPECT_EQ(err.key, "sources.http[0].queue_route_options.max_message_bytes");
  EXPECT_EQ(err.line, 7u);
}

TEST(RelayConfig, NonLoopbackListenNeedsAToken) {
  auto err = error_of("[[sources.http]]\nlisten = \"0.0.0.0:8080\"\n");
  EXPECT_EQ(err.key, "sources.http[0].listen");
  EXPECT_NE(err.message.find("without a token"), std::string::npos);
  config_error ok;
  EXPECT_TRUE(load("[[sources.http]]\nlisten = \"0.0.0.0:8080\"\nallow_insecure = true\n", ok))
      << ok.to_string();
  err = error_of("[[sources.http]]\nlisten = \"myhost:80\"\n");
  EXPECT_NE(err.message.find("not an IP address"), std::string::npos);
}

TEST(RelayConfig, DuplicateListenersAndNames) {
  auto err = error_of("[[sources.http]]\n[[sources.http]]\n");
  EXPECT_EQ(err.line, 2u);
  EXPECT_EQ(err.key, "sources.http[1].listen");
  err = error_of(
      "[[sources.http]]\nname = \"a\"\n[[sources.http]]\nname = \"a\"\nlisten = "
      "\"127.0.0.1:9000\"\n");
  EXPECT_EQ(err.message, "source name 'a' is used twice");
}

TEST(RelayConfig, TokensFromEnvironmentAndFile) {
  ::setenv("SQSRELAY_TEST_TOKENS", "env-1, env-2", 1);
  std::string file = ::testing::TempDir() + "/tokens.txt";
  std::ofstream(file) << "# rotation\nfile-1\n\nfile-2\r\n";
  config_error err;
  auto c = load(
      "[[sources.http]]\ntokens_env = \"SQSRELAY_TEST_TOKENS\"\ntokens_file = \"" + file + "\"\n",
      err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->http_sources[0].tokens,
            (std::vector<std::string>{"file-1", "file-2", "env-1", "env-2"}));
  auto e2 = error_of("[[sources.http]]\ntokens_env = \"SQSRELAY_TEST_UNSET_VAR\"\n");
  EXPECT_EQ(e2.message, "tokens_env: $SQSRELAY_TEST_UNSET_VAR is not set");
  e2 = error_of("[[sources.http]]\ntokens_file = \"/nonexistent/tokens\"\n");
  EXPECT_EQ(e2.message, "tokens_file '/nonexistent/tokens' cannot be read");
}

TEST(RelayConfig, TransformsAreReserved) {
  config_error ok;
  EXPECT_TRUE(load("transforms = []\n", ok)) << ok.to_string();
  auto err = error_of("[[transforms]]\ntype = \"select\"\n");
  EXPECT_NE(err.message.find("transform type 'select' is not available"), std::string::npos);
}

TEST(RelayConfig, MissingFile) {
  config_error err;
  EXPECT_FALSE(load_file("/nonexistent/relay.toml", err));
  EXPECT_EQ(err.to_string(), "/nonexistent/relay.toml: cannot be read");
}

TEST(Units, SizesAndDurations) {
  EXPECT_EQ(parse_bytes("64MiB"), 64ull << 20);
  EXPECT_EQ(parse_bytes("10GB"), 10000000000ull);
  EXPECT_EQ(parse_bytes("512"), 512u);
  EXPECT_EQ(parse_bytes("1 KiB"), 1024u);
  EXPECT_FALSE(parse_bytes("1.5GiB"));
  EXPECT_FALSE(parse_bytes("99999999999TiB"));
  EXPECT_EQ(format_bytes(64ull << 20), "64MiB");
  EXPECT_EQ(format_bytes(1000), "1000B");
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("2s"), 2000ms);
  EXPECT_EQ(parse_duration("1h"), 3600000ms);
  EXPECT_EQ(parse_duration("0"), 0ms);
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 parsecs"));
  EXPECT_EQ(format_duration(90000ms), "90s");
  EXPECT_EQ(format_duration(120000ms), "2m");
}

TEST(ConfigDocs, HelpListsEveryOptionWithDefault) {
  auto h = help_text();
  EXPECT_NE(h.find("disk_budget"), std::string::npos);
  EXPECT_NE(h.find("\"10GiB\""), std::string::npos);
  EXPECT_NE(h.find("reject | dead_letter"), std::string::npos);
  EXPECT_NE(h.find("\"127.0.0.1:8080\""), std::string::npos);
}

TEST(ConfigDocs, TheExampleInTheReferenceLoads) {
  std::string md = configuration_markdown();
  auto start = md.find("```toml\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  auto end = md.find("```", start);
  ::setenv("SQSRELAY_INGEST_TOKENS", "example-token", 1);
  config_error err;
  auto c = load(md.substr(start, end - start), err);
  ASSERT_TRUE(c) << err.to_string();
  EXPECT_EQ(c->http_sources[0].routes[0].queue, "telemetry");
  EXPECT_EQ(c->http_sources[0].tokens, (std::vector<std::string>{"example-token"}));
}

TEST(ConfigDocs, CheckedInReferenceIsUpToDate) {
  const char* root = std::getenv("SQSRELAY_SOURCE_DIR");
  ASSERT_TRUE(root) << "SQSRELAY_SOURCE_DIR is not set (run through ctest)";
  std::ifstream in(std::string(root) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(text.str() == configuration_markdown())
      << "docs/configuration.md is stale: regenerate it with "
         "`build/<dir>/src/config/sqsrelay-config-docs > docs/configuration.md`";
}

}  // namespace
}  // namespace sqsrelay::config
