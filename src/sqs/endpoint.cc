#include "sqs/endpoint.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>

#include "sqs/client.h"

namespace sqsrelay::sqs {

namespace {

std::optional<std::string> setting(const aws::env_lookup& env, std::string_view name) {
  auto v = env(name);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

bool truthy(const std::optional<std::string>& v) {
  if (!v) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s == "true" || s == "1";
}

std::optional<std::string> profile_value(const std::optional<aws::ini_section>& p,
                                         std::string_view key) {
  if (!p) return std::nullopt;
  auto it = p->find(key);
  if (it == p->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

bool is_loopback_host(std::string_view host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(host), ec);
  return !ec && a.is_loopback();
}

std::string queue_region(const std::string& origin_url) {
  auto o = http::parse_origin(origin_url);
  return o ? region_from_host(o->host) : std::string();
}

}  // namespace

std::string region_from_host(std::string_view host) {
  // sqs.REGION.amazonaws.com, sqs.REGION.amazonaws.com.cn, sqs-fips.REGION.amazonaws.com,
  // REGION.queue.amazonaws.com (legacy)
  auto dot = host.find('.');
  if (dot == std::string_view::npos) return {};
  std::string_view first = host.substr(0, dot), rest = host.substr(dot + 1);
  if (first == "sqs" || first == "sqs-fips") {
    auto d2 = rest.find('.');
    if (d2 == std::string_view::npos) return {};
    std::string_view tail = rest.substr(d2 + 1);
    if (tail == "amazonaws.com" || tail == "amazonaws.com.cn" || tail == "api.aws")
      return std::string(rest.substr(0, d2));
    return {};
  }
  if (rest == "queue.amazonaws.com") return std::string(first);
  return {};
}

namespace {

// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS when set, else the profile's
// ignore_configured_endpoint_urls (the environment outranks the file, as the SDKs document).
bool ignore_configured_urls(const aws::env_lookup& env,
                            const std::optional<aws::ini_section>& prof) {
  if (auto v = setting(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) return truthy(v);
  return truthy(profile_value(prof, "ignore_configured_endpoint_urls"));
}

// Rules 2-4: the endpoint from the environment or the config file; empty when none.
std::string configured_url(const aws::env_lookup& env, const aws::profile_files& files,
                           const std::string& profile, const std::optional<aws::ini_section>& prof,
                           std::string& source) {
  if (ignore_configured_urls(env, prof)) return {};
  if (auto v = setting(env, "AWS_ENDPOINT_URL_SQS")) {
    source = "AWS_ENDPOINT_URL_SQS";
    return *v;
  }
  if (auto g = setting(env, "AWS_ENDPOINT_URL")) {
    source = "AWS_ENDPOINT_URL";
    return *g;
  }
  if (auto svc = profile_value(prof, "services")) {
    if (auto sec = aws::find_services(files, *svc)) {
      if (auto it = sec->find("sqs.endpoint_url"); it != sec->end() && !it->second.empty()) {
        source = fmt::format("{} [services {}] sqs.endpoint_url", files.config_path, *svc);
        return it->second;
      }
    }
  }
  if (auto e = profile_value(prof, "endpoint_url")) {
    source = fmt::format("{} profile {} endpoint_url", files.config_path, profile);
    return *e;
  }
  return {};
}

}  // namespace

std::optional<std::string> endpoint_path(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return "/";
  std::string_view rest = url.substr(scheme + 3);
  auto start = rest.find_first_of("/?#");
  if (start == std::string_view::npos) return "/";
  rest = rest.substr(start);
  if (rest.find_first_of("?#") != std::string_view::npos) return std::nullopt;
  return std::string(rest);
}

boost::system::result<resolved_endpoint, std::string> resolve_endpoint(
    const endpoint_request& req, const aws::env_lookup& env) {
  resolved_endpoint out;
  aws::profile_files files = aws::load_profile_files(env);
  std::string profile = req.profile.empty() ? aws::profile_name(env) : req.profile;
  auto prof = aws::find_profile(files, profile);
  if (!prof && aws::profile_is_named(env, req.profile))
    return aws::profile_not_found_message(files, profile);

  std::string url;
  if (!req.endpoint_url.empty()) {
    url = req.endpoint_url;
    out.source = "--endpoint-url";
  } else {
    url = configured_url(env, files, profile, prof, out.source);
  }
  auto parts = parse_queue_url(req.queue);
  if (!parts && is_queue_url(req.queue)) {
    return fmt::format(
        "queue URL '{}' names no queue (expected http(s)://HOST[:PORT]/ACCOUNT/NAME)", req.queue);
  }
  bool from_queue = false;
  if (url.empty() && parts) {
    url = parts->origin;
    out.source = "the queue URL";
    from_queue = true;
  }

  // Region.
  if (!req.region.empty()) {
    out.region = req.region;
    out.region_source = "--region";
  } else if (std::string qr = from_queue ? queue_region(url) : std::string(); !qr.empty()) {
    out.region = qr;
    out.region_source = "the queue URL";
  } else if (auto r = setting(env, "AWS_REGION")) {
    out.region = *r;
    out.region_source = "AWS_REGION";
  } else if (auto d = setting(env, "AWS_DEFAULT_REGION")) {
    out.region = *d;
    out.region_source = "AWS_DEFAULT_REGION";
  } else if (auto pr = profile_value(prof, "region")) {
    out.region = *pr;
    out.region_source = fmt::format("{} profile {}", files.config_path, profile);
  }

  if (url.empty()) {
    if (!out.region.empty()) {
      url = fmt::format("https://sqs.{}.amazonaws.com", out.region);
      out.source = fmt::format("the AWS endpoint for region {}", out.region);
    } else {
      url = std::string(embedded_endpoint);
      out.source = "the default (the embedded server)";
    }
  }
  auto o = http::parse_origin(url);
  if (!o) {
    return fmt::format("endpoint '{}' (from {}) is not an http:// or https:// URL", url,
                       out.source);
  }
  auto path = endpoint_path(url);
  if (!path) {
    return fmt::format("endpoint '{}' (from {}): a query or fragment is not allowed", url,
                       out.source);
  }
  out.origin = *o;
  out.path = std::move(*path);
  out.url = o->to_string();
  if (out.path != "/") out.url += out.path;
  out.loopback = is_loopback_host(o->host);
  if (out.region.empty()) {
    out.region = region_from_host(o->host);
    out.region_source = "the endpoint host";
  }
  if (out.region.empty()) {
    out.region = "us-east-1";
    out.region_source = "the default";
  }

  if (!req.ca_bundle.empty()) {
    out.ca_bundle = req.ca_bundle;
  } else if (auto ca = setting(env, "AWS_CA_BUNDLE")) {
    out.ca_bundle = *ca;
  } else if (auto pca = profile_value(prof, "ca_bundle")) {
    out.ca_bundle = *pca;
  }
  return out;
}

std::unique_ptr<aws::credential_chain> make_client_chain(boost::asio::any_io_executor ex,
                                                         const aws::env_lookup& env,
                                                         http::client& http, const clock& clk,
                                                         const resolved_endpoint& ep,
                                                         std::string profile) {
  if (!ep.loopback) return aws::make_default_chain(std::move(ex), env, http, clk, profile);
  std::vector<std::unique_ptr<aws::credential_provider>> p;
  if (profile.empty()) p.push_back(aws::make_env_provider(env));
  p.push_back(aws::make_profile_provider(env, profile));
  p.push_back(aws::make_container_provider(env, http));
  aws::credentials placeholder{"sqsrelay-local", aws::secret_string("sqsrelay-local"), {}};
  p.push_back(aws::make_static_provider(
      std::move(placeholder),
      "placeholder credentials (loopback endpoint; the embedded server without credentials "
      "accepts any signature)"));
  return std::make_unique<aws::credential_chain>(std::move(ex), std::move(p), clk);
}

}  // namespace sqsrelay::sqs
