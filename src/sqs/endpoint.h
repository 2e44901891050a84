// Where an SQS client sends its requests, in which region it signs them, and with which
// credentials: the rules every sqsrelay command uses (documented in docs/client.md).
//
// Endpoint, first match wins:
//   1. --endpoint-url
//   2. AWS_ENDPOINT_URL_SQS            (2-4 are skipped when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
//   3. AWS_ENDPOINT_URL                 is true, or when it is unset and the profile has
//                                       ignore_configured_endpoint_urls = true)
//   4. the config file's profile: `services = NAME` -> [services NAME] `sqs = / endpoint_url =`,
//      then the profile's own `endpoint_url`
//   5. the queue URL's scheme://host[:port], when the queue is given as a URL
//      (http(s)://HOST[:PORT]/[...]/NAME: any URL whose last path segment names the queue)
//   6. https://sqs.REGION.amazonaws.com when a region is configured (flag, env, config)
//   7. otherwise the embedded server, http://127.0.0.1:9324
// The path of an endpoint URL from rules 1-4 is kept: requests are POSTed to it and signed
// with it (a prefix behind a proxy or gateway), as boto3 does.
// A named profile (--profile, AWS_PROFILE, AWS_DEFAULT_PROFILE) that neither file has is an
// error; the implicit "default" may be absent.
// Region, first match wins: --region; the queue URL's host when the endpoint came from it
// (sqs.REGION.amazonaws.com[.cn], REGION.queue.amazonaws.com); AWS_REGION; AWS_DEFAULT_REGION;
// the profile's `region`; the endpoint host if it names one; us-east-1.
// CA bundle for TLS: --ca-bundle, AWS_CA_BUNDLE, the profile's `ca_bundle`, else the system's.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "aws/credential_chain.h"
#include "http/client.h"

namespace sqsrelay::sqs {

inline constexpr std::string_view embedded_endpoint = "http://127.0.0.1:9324";

struct endpoint_request {
  std::string endpoint_url;  // --endpoint-url
  std::string region;        // --region
  std::string profile;       // --profile (else AWS_PROFILE, else "default")
  std::string queue;         // the queue the command works on: a name or a URL (optional)
  std::string ca_bundle;     // --ca-bundle
};

struct resolved_endpoint {
  http::origin origin;
  std::string path = "/";     // the request target of every call, e.g. "/sqs-prefix"
  std::string url;            // origin and path as text, e.g. "https://gw.example/sqs-prefix"
  std::string region;
  std::string source;         // which rule chose the endpoint, e.g. "AWS_ENDPOINT_URL_SQS"
  std::string region_source;  // which rule chose the region
  std::string ca_bundle;      // empty: the system's CA paths
  bool loopback = false;      // the endpoint host is a loopback address or "localhost"
};

// Errors are messages naming the setting at fault ("AWS_ENDPOINT_URL_SQS 'ftp://x': ...").
boost::system::result<resolved_endpoint, std::string> resolve_endpoint(
    const endpoint_request& req, const aws::env_lookup& env);

// The path of an http(s) endpoint URL, still percent-encoded and kept as written ("/" when
// it has none); nullopt when the URL carries a query or fragment, which an endpoint may not.
std::optional<std::string> endpoint_path(std::string_view url);

// The region in an AWS SQS host name, or empty.
std::string region_from_host(std::string_view host);

// The credential chain for a client of `ep`: the default chain (environment, profile,
// container, IMDS). For a loopback endpoint IMDS is left out (a local run should not wait on
// 169.254.169.254), and placeholder credentials end the chain: the embedded server accepts
// any signature when it has no credentials configured. When they are used, the chain logs so
// once at debug level.
std::unique_ptr<aws::credential_chain> make_client_chain(boost::asio::any_io_executor ex,
                                                         const aws::env_lookup& env,
                                                         http::client& http, const clock& clk,
                                                         const resolved_endpoint& ep,
                                                         std::string profile);

}  // namespace sqsrelay::sqs
