#include "aws/credential_chain.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/client.h"

namespace sqsrelay::aws {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void throw_exception_from_error(const credential_error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

namespace {

credential_error not_found(std::string m) { return {credential_error::not_found, std::move(m)}; }
credential_error failed(std::string m) { return {credential_error::failed, std::move(m)}; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' ||
                        s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s(trim(*v));
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s == "true" || s == "1";
}

std::optional<std::string> non_empty(const env_lookup& env, std::string_view name) {
  auto v = env(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string home_path(const env_lookup& env, std::string_view rel) {
  auto home = non_empty(env, "HOME");
  return (home ? *home : std::string(".")) + "/" + std::string(rel);
}

std::string expand_home(const env_lookup& env, std::string p) {
  if (p.size() >= 1 && p[0] == '~' && (p.size() == 1 || p[1] == '/'))
    return home_path(env, p.size() > 2 ? p.substr(2) : "");
  return p;
}

// ---- providers ---------------------------------------------------------------------------

class static_provider final : public credential_provider {
 public:
  static_provider(credentials c, std::string name) : creds_(std::move(c)), name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  asio::awaitable<credential_result<timed_credentials>> fetch() override {
    co_return timed_credentials{creds_, std::nullopt, name_};
  }

 private:
  credentials creds_;
  std::string name_;
};

class env_provider final : public credential_provider {
 public:
  explicit env_provider(env_lookup env) : env_(std::move(env)) {}
  std::string_view name() const override { return "environment"; }
  asio::awaitable<credential_result<timed_credentials>> fetch() override {
    auto id = non_empty(env_, "AWS_ACCESS_KEY_ID");
    auto secret = non_empty(env_, "AWS_SECRET_ACCESS_KEY");
    if (!id && !secret) co_return not_found("AWS_ACCESS_KEY_ID is not set");
    if (!id) co_return failed("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
    if (!secret) co_return failed("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    timed_credentials t;
    t.creds.access_key_id = *id;
    t.creds.secret_access_key = secret_string(std::move(*secret));
    if (auto tok = non_empty(env_, "AWS_SESSION_TOKEN")) t.creds.session_token = *tok;
    t.provider = "environment";
    co_return t;
  }

 private:
  env_lookup env_;
};

class profile_provider final : public credential_provider {
 public:
  profile_provider(env_lookup env, std::string profile)
      : env_(std::move(env)),
        named_(profile_is_named(env_, profile)),
        profile_(profile.empty() ? profile_name(env_) : std::move(profile)),
        name_("profile " + profile_) {}
  std::string_view name() const override { return name_; }
  asio::awaitable<credential_result<timed_credentials>> fetch() override {
    profile_files f = load_profile_files(env_);
    auto sec = find_profile(f, profile_);
    if (!sec) {
      // A named profile that is missing is a typo, not "no credentials here": falling
      // through would act as the container's or instance's role instead.
      std::string m = profile_not_found_message(f, profile_);
      co_return named_ ? failed(std::move(m)) : not_found(std::move(m));
    }
    auto get = [&](std::string_view k) -> std::optional<std::string> {
      auto it = sec->find(k);
      if (it == sec->end() || trim(it->second).empty()) return std::nullopt;
      return std::string(trim(it->second));
    };
    auto id = get("aws_access_key_id");
    auto secret = get("aws_secret_access_key");
    if (!id && !secret) {
      for (std::string_view k : {"role_arn", "credential_process", "sso_session", "sso_start_url",
                                 "web_identity_token_file"}) {
        if (sec->count(k)) {
          co_return failed(fmt::format("profile '{}' uses {}, which sqsrelay does not support; "
                                       "use access keys, the environment or instance roles",
                                       profile_, k));
        }
      }
      co_return not_found(fmt::format("profile '{}' has no aws_access_key_id", profile_));
    }
    if (!id || !secret) {
      co_return failed(fmt::format("profile '{}' has {} but not {}", profile_,
                                   id ? "aws_access_key_id" : "aws_secret_access_key",
                                   id ? "aws_secret_access_key" : "aws_access_key_id"));
    }
    timed_credentials t;
    t.creds.access_key_id = *id;
    t.creds.secret_access_key = secret_string(std::move(*secret));
    if (auto tok = get("aws_session_token")) t.creds.session_token = *tok;
    t.provider = name_;
    co_return t;
  }

 private:
  env_lookup env_;
  bool named_;  // --profile, AWS_PROFILE or AWS_DEFAULT_PROFILE; not the implicit default
  std::string profile_;
  std::string name_;
};

// A GET/PUT with a short timeout through the shared HTTP client.
struct small_request {
  std::string_view method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{1000};
};

asio::awaitable<credential_result<http::incoming>> fetch_url(http::client& client,
                                                             small_request r) {
  auto o = http::parse_origin(r.url);
  if (!o) co_return failed(fmt::format("invalid URL {}", r.url));
  auto scheme_end = r.url.find("://");
  auto path_start = r.url.find('/', scheme_end + 3);
  std::string target = path_start == std::string::npos ? "/" : r.url.substr(path_start);
  http::outgoing req;
  req.reset(r.method, target);
  req.timeout = r.timeout;
  for (auto& [k, v] : r.headers) req.add_header(k, v);
  http::incoming res;
  auto id = client.add_origin(*o);
  auto done = co_await client.execute(id, &req, &res);
  if (!done) co_return failed(done.error().message);
  co_return std::move(res);
}

bool allowed_container_host(const http::origin& o) {
  if (o.tls) return true;
  if (o.host == "localhost") return true;
  boost::system::error_code ec;
  auto a = asio::ip::make_address(o.host, ec);
  if (ec) return false;
  if (a.is_loopback()) return true;
  auto s = a.to_string();
  return s == "169.254.170.2" || s == "169.254.170.23" || s == "fd00:ec2::23";
}

class container_provider final : public credential_provider {
 public:
  container_provider(env_lookup env, http::client& http) : env_(std::move(env)), http_(http) {}
  std::string_view name() const override { return "container"; }
  asio::awaitable<credential_result<timed_credentials>> fetch() override {
    small_request r;
    r.timeout = 2s;
    if (auto rel = non_empty(env_, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
      r.url = "http://169.254.170.2" + *rel;
    } else if (auto full = non_empty(env_, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
      auto o = http::parse_origin(*full);
      if (!o) co_return failed(fmt::format("AWS_CONTAINER_CREDENTIALS_FULL_URI {} is not a URL", *full));
      if (!allowed_container_host(*o)) {
        co_return failed(fmt::format("AWS_CONTAINER_CREDENTIALS_FULL_URI {}: plain http is only "
                                     "allowed to loopback or the ECS/EKS link-local addresses",
                                     *full));
      }
      r.url = *full;
    } else {
      co_return not_found("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI not set");
    }
    std::optional<std::string> token;
    if (auto file = non_empty(env_, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
      token = read_file(*file);
      if (!token) {
        co_return failed(fmt::format("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {} cannot be read",
                                     *file));
      }
      token = std::string(trim(*token));
    } else {
      token = non_empty(env_, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    }
    if (token) {
      if (token->find_first_of("\r\n") != std::string::npos)
        co_return failed("the container authorization token contains a line break");
      r.headers.emplace_back("Authorization", *token);
    }
    r.headers.emplace_back("Accept", "application/json");
    // Two attempts, as a container agent may be briefly unavailable at startup.
    credential_error last;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto res = co_await fetch_url(http_, r);
      if (!res) {
        last = failed(fmt::format("container endpoint {}: {}", r.url, res.error().message));
        continue;
      }
      if (res->status != 200) {
        last = failed(fmt::format("container endpoint {} answered HTTP {}", r.url, res->status));
        if (res->status < 500) break;
        continue;
      }
      co_return parse_credentials_json(res->body, "container");
    }
    co_return last;
  }

 private:
  env_lookup env_;
  http::client& http_;
};

class imds_provider final : public credential_provider {
 public:
  imds_provider(env_lookup env, http::client& http) : env_(std::move(env)), http_(http) {}
  std::string_view name() const override { return "imds"; }
  asio::awaitable<credential_result<timed_credentials>> fetch() override {
    if (truthy(env_("AWS_EC2_METADATA_DISABLED")))
      co_return not_found("AWS_EC2_METADATA_DISABLED is set");
    std::string base = non_empty(env_, "AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or(
        "http://169.254.169.254");
    while (!base.empty() && base.back() == '/') base.pop_back();
    // Failures here mean "not on EC2" for the chain: not_found, with the reason.
    small_request tok;
    tok.method = "PUT";
    tok.url = base + "/latest/api/token";
    tok.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", "21600");
    auto t = co_await fetch_url(http_, tok);
    if (!t) co_return not_found(fmt::format("IMDS {}: {}", base, t.error().message));
    if (t->status != 200)
      co_return not_found(fmt::format("IMDS token request answered HTTP {}", t->status));
    std::string token(trim(t->body));
    small_request role;
    role.url = base + "/latest/meta-data/iam/security-credentials/";
    role.headers.emplace_back("X-aws-ec2-metadata-token", token);
    auto r = co_await fetch_url(http_, role);
    if (!r) co_return not_found(fmt::format("IMDS {}: {}", base, r.error().message));
    if (r->status == 404) co_return not_found("IMDS: the instance has no IAM role");
    if (r->status != 200)
      co_return not_found(fmt::format("IMDS role listing answered HTTP {}", r->status));
    std::string_view name = trim(r->body);
    name = name.substr(0, name.find('\n'));
    name = trim(name);
    if (name.empty()) co_return not_found("IMDS: the instance has no IAM role");
    small_request cred;
    cred.url = role.url + std::string(name);
    cred.headers = role.headers;
    auto c = co_await fetch_url(http_, cred);
    if (!c) co_return failed(fmt::format("IMDS {}: {}", base, c.error().message));
    if (c->status != 200) {
      co_return failed(fmt::format("IMDS credentials for role {} answered HTTP {}", name,
                                   c->status));
    }
    co_return parse_credentials_json(c->body, fmt::format("imds role {}", name));
  }

 private:
  env_lookup env_;
  http::client& http_;
};

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

env_lookup process_env() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

env_lookup map_env(std::map<std::string, std::string, std::less<>> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto num = [&](size_t pos, size_t n, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    size_t i = 1;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
    rest.remove_prefix(i);
  }
  if (!(rest.empty() || rest == "Z" || rest == "+00:00" || rest == "UTC")) return std::nullopt;
  int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se;
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs));
}

credential_result<timed_credentials> parse_credentials_json(std::string_view body,
                                                            std::string provider) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec || !v.is_object())
    return failed(fmt::format("{}: the credentials response is not a JSON object", provider));
  const auto& o = v.get_object();
  auto str = [&](std::string_view k) -> std::optional<std::string> {
    auto* p = o.if_contains(k);
    if (!p || !p->is_string() || p->get_string().empty()) return std::nullopt;
    return std::string(p->get_string());
  };
  if (auto code = str("Code"); code && *code != "Success")
    return failed(fmt::format("{}: credentials response Code is {}", provider, *code));
  auto id = str("AccessKeyId");
  auto secret = str("SecretAccessKey");
  if (!id || !secret)
    return failed(fmt::format("{}: the credentials response lacks AccessKeyId or "
                              "SecretAccessKey", provider));
  timed_credentials t;
  t.creds.access_key_id = *id;
  t.creds.secret_access_key = secret_string(std::move(*secret));
  if (auto tok = str("Token")) t.creds.session_token = *tok;
  if (auto exp = str("Expiration")) {
    t.expiration = parse_iso8601(*exp);
    if (!t.expiration)
      return failed(fmt::format("{}: unparseable Expiration '{}'", provider, *exp));
  }
  t.provider = std::move(provider);
  return t;
}

ini_file parse_ini(std::string_view text) {
  ini_file out;
  ini_section* cur = nullptr;
  std::string parent;  // key with an empty value: indented lines below are its sub-keys
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      cur = &out[std::string(trim(line.substr(1, line.size() - 2)))];
      parent.clear();
      continue;
    }
    if (!cur) continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key(trim(line.substr(0, eq)));
    std::string value(trim(line.substr(eq + 1)));
    if (indented && !parent.empty()) {
      (*cur)[parent + "." + key] = value;
      continue;
    }
    parent = value.empty() ? key : std::string();
    (*cur)[key] = value;
  }
  return out;
}

std::string profile_name(const env_lookup& env) {
  if (auto p = non_empty(env, "AWS_PROFILE")) return *p;
  if (auto p = non_empty(env, "AWS_DEFAULT_PROFILE")) return *p;
  return "default";
}

bool profile_is_named(const env_lookup& env, std::string_view flag) {
  return !flag.empty() || non_empty(env, "AWS_PROFILE") || non_empty(env, "AWS_DEFAULT_PROFILE");
}

std::string profile_not_found_message(const profile_files& f, std::string_view profile) {
  return fmt::format("the config profile ({}) could not be found in {} or {}", profile,
                     f.credentials_path, f.config_path);
}

profile_files load_profile_files(const env_lookup& env) {
  profile_files f;
  f.credentials_path = non_empty(env, "AWS_SHARED_CREDENTIALS_FILE")
                           ? expand_home(env, *env("AWS_SHARED_CREDENTIALS_FILE"))
                           : home_path(env, ".aws/credentials");
  f.config_path = non_empty(env, "AWS_CONFIG_FILE") ? expand_home(env, *env("AWS_CONFIG_FILE"))
                                                    : home_path(env, ".aws/config");
  if (auto t = read_file(f.credentials_path)) f.credentials = parse_ini(*t);
  if (auto t = read_file(f.config_path)) f.config = parse_ini(*t);
  return f;
}

std::optional<ini_section> find_profile(const profile_files& f, std::string_view profile) {
  std::optional<ini_section> out;
  auto cfg = f.config.find("profile " + std::string(profile));
  if (cfg == f.config.end() && profile == "default") cfg = f.config.find("default");
  if (cfg != f.config.end()) out = cfg->second;
  auto cred = f.credentials.find(profile);
  if (cred != f.credentials.end()) {
    if (!out) out.emplace();
    for (auto& [k, v] : cred->second) (*out)[k] = v;
  }
  return out;
}

std::optional<ini_section> find_services(const profile_files& f, std::string_view name) {
  auto it = f.config.find("services " + std::string(name));
  if (it == f.config.end()) return std::nullopt;
  return it->second;
}

std::unique_ptr<credential_provider> make_static_provider(credentials c, std::string name) {
  return std::make_unique<static_provider>(std::move(c), std::move(name));
}
std::unique_ptr<credential_provider> make_env_provider(env_lookup env) {
  return std::make_unique<env_provider>(std::move(env));
}
std::unique_ptr<credential_provider> make_profile_provider(env_lookup env, std::string profile) {
  return std::make_unique<profile_provider>(std::move(env), std::move(profile));
}
std::unique_ptr<credential_provider> make_container_provider(env_lookup env, http::client& http) {
  return std::make_unique<container_provider>(std::move(env), http);
}
std::unique_ptr<credential_provider> make_imds_provider(env_lookup env, http::client& http) {
  return std::make_unique<imds_provider>(std::move(env), http);
}

// ---- chain ---------------------------------------------------------------------------------

credential_chain::credential_chain(asio::any_io_executor ex,
                                   std::vector<std::unique_ptr<credential_provider>> providers,
                                   const clock& clk, chain_options o)
    : ex_(std::move(ex)), providers_(std::move(providers)), clock_(clk), opts_(o) {}

credential_chain::~credential_chain() { *alive_ = false; }

std::vector<std::string> credential_chain::provider_names() const {
  std::vector<std::string> names;
  for (auto& p : providers_) names.emplace_back(p->name());
  return names;
}

void credential_chain::invalidate() { current_.reset(); }

bool credential_chain::fresh_enough(std::chrono::seconds ahead) const {
  if (!current_) return false;
  if (!current_->expiration) return true;
  return *current_->expiration - clock_.wall() > ahead;
}

bool credential_chain::refreshed_recently() const {
  return succeeded_at_ && clock_.steady() - *succeeded_at_ < opts_.min_refresh_interval;
}

asio::awaitable<credential_result<std::shared_ptr<const timed_credentials>>>
credential_chain::fetch_all() {
  ++fetches_;
  std::string tried;
  for (auto& p : providers_) {
    auto r = co_await p->fetch();
    if (r) {
      auto t = std::make_shared<timed_credentials>(std::move(*r));
      const auto left =
          t->expiration
              ? std::chrono::duration_cast<std::chrono::seconds>(*t->expiration - clock_.wall())
              : std::chrono::seconds::max();
      if (left <= std::chrono::seconds(0)) {
        co_return failed(
            fmt::format("credentials: {}: the credentials it returned expired {} s ago",
                        t->provider, -left.count()));
      }
      if (left <= opts_.refresh_ahead) {
        spdlog::warn("credentials from {} expire in {} s (refreshing at most every {} s)",
                     t->provider, left.count(), opts_.min_refresh_interval.count());
      }
      spdlog::debug("credentials: using {}", t->provider);
      co_return std::shared_ptr<const timed_credentials>(std::move(t));
    }
    if (r.error().kind == credential_error::failed) {
      co_return failed(fmt::format("credentials: {}: {}", p->name(), r.error().message));
    }
    tried += fmt::format("{}{} ({})", tried.empty() ? "" : "; ", p->name(), r.error().message);
  }
  co_return not_found(fmt::format("no AWS credentials found; tried: {}", tried));
}

// Records a fetch's outcome and wakes the callers waiting for it.
void credential_chain::refreshed(
    const credential_result<std::shared_ptr<const timed_credentials>>& r) {
  refreshing_ = false;
  ++completed_;
  if (r) {
    current_ = *r;
    last_error_.reset();
    failed_at_.reset();
    succeeded_at_ = clock_.steady();
  } else {
    last_error_ = r.error();
    failed_at_ = clock_.steady();
  }
  for (void* w : waiters_) static_cast<asio::steady_timer*>(w)->cancel();
  waiters_.clear();
}

asio::awaitable<void> credential_chain::refresh_in_background() {
  std::shared_ptr<bool> alive = alive_;
  auto r = co_await fetch_all();
  if (!*alive) co_return;
  if (!r) {
    spdlog::warn("credential refresh failed (keeping the current ones until they expire): {}",
                 r.error().message);
  }
  refreshed(r);
}

asio::awaitable<credential_result<std::shared_ptr<const timed_credentials>>>
credential_chain::get() {
  for (;;) {
    if (fresh_enough(opts_.refresh_ahead)) co_return current_;
    if (fresh_enough(opts_.mandatory_ahead)) {
      bool backing_off = failed_at_ && clock_.steady() - *failed_at_ < opts_.retry_interval;
      if (!refreshing_ && !backing_off && !refreshed_recently()) {
        refreshing_ = true;
        asio::co_spawn(ex_, refresh_in_background(), asio::detached);
      }
      co_return current_;
    }
    // Short-lived credentials fetched moments ago: nothing better is to be had yet.
    if (refreshed_recently() && fresh_enough(std::chrono::seconds(0))) co_return current_;
    if (!refreshing_) {
      if (last_error_ && failed_at_ && clock_.steady() - *failed_at_ < opts_.min_retry_interval)
        co_return *last_error_;
      // Nothing usable: fetch now, and let concurrent callers wait for this one.
      refreshing_ = true;
      auto r = co_await fetch_all();
      refreshed(r);
      if (!r) co_return r.error();
      co_return current_;
    }
    uint64_t seen = completed_;
    asio::steady_timer t(ex_, asio::steady_timer::time_point::max());
    waiters_.push_back(&t);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    if (completed_ != seen) {  // the refresh we waited for finished: take its outcome
      if (last_error_ && !fresh_enough(opts_.mandatory_ahead)) co_return *last_error_;
      if (current_) co_return current_;
    }
  }
}

std::unique_ptr<credential_chain> make_default_chain(asio::any_io_executor ex, env_lookup env,
                                                     http::client& http, const clock& clk,
                                                     std::string profile) {
  std::vector<std::unique_ptr<credential_provider>> p;
  // An explicit profile (--profile) outranks the environment keys, as in the AWS CLI.
  if (profile.empty()) p.push_back(make_env_provider(env));
  p.push_back(make_profile_provider(env, profile));
  p.push_back(make_container_provider(env, http));
  p.push_back(make_imds_provider(env, http));
  return std::make_unique<credential_chain>(std::move(ex), std::move(p), clk);
}

}  // namespace sqsrelay::aws
