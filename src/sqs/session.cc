#include "sqs/session.h"

#include <spdlog/spdlog.h>

namespace sqsrelay::sqs {

session::~session() {
  client_.reset();
  chain_.reset();
  http_.reset();
}

boost::system::result<std::unique_ptr<session>, std::string> session::open(
    boost::asio::any_io_executor ex, session_options o, aws::env_lookup env, const clock& clk) {
  auto ep = resolve_endpoint(o.endpoint, env);
  if (!ep) return ep.error();
  std::unique_ptr<session> s(new session());
  s->endpoint_ = std::move(*ep);
  spdlog::debug("sqs endpoint {} (from {}), region {} (from {})", s->endpoint_.url,
                s->endpoint_.source, s->endpoint_.region, s->endpoint_.region_source);
  http::client_options ho;
  ho.ca_file = s->endpoint_.ca_bundle;
  ho.verify_tls = o.verify_tls;
  ho.max_connections_per_origin = o.max_connections;
  ho.connect_timeout = o.connect_timeout;
  ho.request_timeout = o.request_timeout;
  auto h = http::client::create(ex, ho);
  if (!h) return h.error().message;
  s->http_ = std::move(*h);
  s->chain_ = make_client_chain(ex, env, *s->http_, clk, s->endpoint_, o.endpoint.profile);
  client_options co;
  co.endpoint = s->endpoint_.origin;
  co.path = s->endpoint_.path;
  co.region = s->endpoint_.region;
  co.max_attempts = o.max_attempts;
  s->client_ = std::make_unique<client>(*s->http_, *s->chain_, clk, co);
  return s;
}

}  // namespace sqsrelay::sqs
