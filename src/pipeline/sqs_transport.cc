#include "pipeline/sqs_transport.h"

#include <cstdlib>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "aws/credential_chain.h"
#include "http/client.h"
#include "sqs/client.h"
#include "sqs/endpoint.h"

namespace sqsrelay::pipeline {

namespace asio = boost::asio;

namespace {

// One call's entries, viewed the way sqs::client wants them; lives in the coroutine frame.
struct call_state {
  std::string queue;
  std::array<sqs::send_entry_ref, sqs::max_batch_entries> refs;
  std::vector<sqs::attribute_view> attrs;
  size_t n = 0;
};

request_error to_request_error(const sqs::client_error& e) {
  request_error r;
  switch (e.kind) {
    case sqs::error_kind::transport: r.what = request_error::kind::transport; break;
    case sqs::error_kind::timeout: r.what = request_error::kind::timeout; break;
    case sqs::error_kind::http_status: r.what = request_error::kind::http_status; break;
    default: r.what = request_error::kind::api; break;
  }
  r.http_status = e.http_status;
  r.code = e.code;
  r.message = e.message;
  r.sender_fault = e.sender_fault;
  r.throttled = e.throttled;
  // Missing credentials are usually transient (IMDS or a container endpoint restarting):
  // retrying until the stop deadline beats dead-lettering valid messages.
  r.retryable = e.retryable || e.kind == sqs::error_kind::credentials;
  return r;
}

asio::awaitable<void> run_send(sqs::client& client, std::unique_ptr<call_state> st,
                               std::function<void(batch_reply)> done) {
  std::span<const sqs::send_entry_ref> refs(st->refs.data(), st->n);
  auto r = co_await client.send_message_batch(st->queue, refs);
  batch_reply reply;
  if (!r) {
    reply.error = to_request_error(r.error());
  } else {
    reply.successful.reserve(r->successful.size());
    for (auto& s : r->successful)
      reply.successful.push_back(entry_success{std::move(s.id), std::move(s.message_id)});
    reply.failed.reserve(r->failed.size());
    for (auto& f : r->failed)
      reply.failed.push_back(
          entry_failure{std::move(f.id), std::move(f.code), std::move(f.message), f.sender_fault});
  }
  done(std::move(reply));
}

asio::awaitable<void> run_limit(sqs::client& client, std::string queue,
                                std::function<void(result<size_t>)> done) {
  auto r = co_await client.get_queue_limits(queue);
  if (!r) {
    spdlog::warn("sender: GetQueueAttributes(MaximumMessageSize) for {}: {}", queue,
                 r.error().message);
    auto ec = r.error().retryable || r.error().kind == sqs::error_kind::credentials
                  ? boost::system::errc::operation_would_block
                  : boost::system::errc::permission_denied;
    done(result<size_t>(boost::system::errc::make_error_code(ec)));
    co_return;
  }
  done(result<size_t>(r->max_message_size));
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::move(fallback);
}

bool loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host.substr(0, 4) == "127.";
}

}  // namespace

sqs_transport::sqs_transport(sqs::client& client, asio::any_io_executor ex)
    : client_(client), ex_(std::move(ex)) {}

void sqs_transport::send_batch(const std::string& queue, std::span<const batch_entry> entries,
                               std::function<void(batch_reply)> done) {
  auto st = std::make_unique<call_state>();
  st->queue = queue;
  st->n = entries.size();
  size_t nattrs = 0;
  for (const auto& e : entries) nattrs += e.message->attributes.size();
  st->attrs.reserve(nattrs);  // never reallocated below: the spans point into it
  for (size_t i = 0; i < entries.size(); ++i) {
    const outbound_message& m = *entries[i].message;
    size_t first = st->attrs.size();
    for (const auto& a : m.attributes)
      st->attrs.push_back(sqs::attribute_view{a.name, a.data_type, a.value, a.binary()});
    auto& ref = st->refs[i];
    ref.id = entries[i].id;
    ref.body = m.body;
    ref.attributes = std::span<const sqs::attribute_view>(st->attrs.data() + first,
                                                          m.attributes.size());
    ref.delay_seconds = m.delay_seconds;
    ref.group_id = m.group_id;
    ref.dedup_id = m.dedup_id;
  }
  // Posted, so `done` never runs inside this call (the sender relies on it).
  asio::post(ex_, [this, st = std::move(st), done = std::move(done)]() mutable {
    asio::co_spawn(ex_, run_send(client_, std::move(st), std::move(done)), asio::detached);
  });
}

void sqs_transport::max_message_size(const std::string& queue,
                                     std::function<void(result<size_t>)> done) {
  asio::post(ex_, [this, queue, done = std::move(done)]() mutable {
    asio::co_spawn(ex_, run_limit(client_, queue, std::move(done)), asio::detached);
  });
}

result<std::unique_ptr<sqs_connection>> sqs_connection::create(asio::any_io_executor ex,
                                                               const connection_options& o,
                                                               std::string& error) {
  std::unique_ptr<sqs_connection> c(new sqs_connection());
  c->endpoint_ = o.endpoint_url;
  if (c->endpoint_.empty())
    c->endpoint_ = env_or("AWS_ENDPOINT_URL_SQS", env_or("AWS_ENDPOINT_URL", default_endpoint));
  auto origin = http::parse_origin(c->endpoint_);
  if (!origin) {
    error = fmt::format("invalid endpoint URL '{}': expected http(s)://host[:port]",
                        c->endpoint_);
    return origin.error();
  }
  auto path = sqs::endpoint_path(c->endpoint_);
  if (!path) {
    error = fmt::format("invalid endpoint URL '{}': a query or fragment is not allowed",
                        c->endpoint_);
    return make_error_code(http::client_errc::invalid_url);
  }
  http::client_options ho;
  ho.max_connections_per_origin = o.max_connections;
  ho.request_timeout = o.request_timeout;
  ho.ca_file = o.ca_file;
  ho.verify_tls = o.verify_tls;
  auto http = http::client::create(ex, ho);
  if (!http) {
    error = http.error().message;
    return http.error().code;
  }
  c->http_ = std::move(*http);

  std::string region = o.region;
  if (region.empty()) region = env_or("AWS_REGION", env_or("AWS_DEFAULT_REGION", "us-east-1"));

  auto& clk = system_clock::instance();
  if (!o.access_key_id.empty() || !o.secret_access_key.empty()) {
    aws::credentials creds{o.access_key_id, aws::secret_string(o.secret_access_key),
                           o.session_token};
    std::vector<std::unique_ptr<aws::credential_provider>> providers;
    providers.push_back(aws::make_static_provider(std::move(creds), "options"));
    c->creds_ = std::make_unique<aws::credential_chain>(ex, std::move(providers), clk);
  } else if (loopback_host(origin->host) && !std::getenv("AWS_ACCESS_KEY_ID") &&
             !std::getenv("AWS_PROFILE") && o.profile.empty()) {
    aws::credentials creds{"sqsrelay", aws::secret_string(std::string("sqsrelay")), ""};
    std::vector<std::unique_ptr<aws::credential_provider>> providers;
    providers.push_back(aws::make_static_provider(std::move(creds), "loopback placeholder"));
    c->creds_ = std::make_unique<aws::credential_chain>(ex, std::move(providers), clk);
  } else {
    c->creds_ = aws::make_default_chain(ex, aws::process_env(), *c->http_, clk, o.profile);
  }
  sqs::client_options so;
  so.endpoint = *origin;
  so.path = std::move(*path);
  so.region = region;
  c->sqs_ = std::make_unique<sqs::client>(*c->http_, *c->creds_, clk, so);
  c->transport_ = std::make_unique<sqs_transport>(*c->sqs_, ex);
  return c;
}

sqs_connection::~sqs_connection() = default;

}  // namespace sqsrelay::pipeline
