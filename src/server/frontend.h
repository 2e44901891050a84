// The embedded server's HTTP face: picks the wire protocol per request (AWS JSON 1.0 when
// X-Amz-Target names an AmazonSQS operation, the Query protocol for form-encoded bodies and
// GET query strings), verifies SigV4 when credentials are configured, decodes the request
// into JSON-protocol shapes, runs the action and encodes the result or error the way that
// protocol's clients expect (x-amzn-query-error on JSON errors; XML for Query).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "aws/sigv4.h"
#include "http/server.h"
#include "server/api.h"
#include "server/faults.h"

namespace sqsrelay::server {

struct frontend_options {
  size_t json_max_depth = 64;
  std::vector<fault_rule> faults;  // see server/faults.h
  // More Prometheus text for /metrics (e.g. the ingest listener's counters).
  std::function<std::string()> extra_metrics;
  // /metrics has no authentication (Prometheus cannot sign requests), so by default only
  // loopback peers get it; others get 403 unless this is set.
  bool metrics_remote = false;
};

struct frontend_stats {
  std::atomic<uint64_t> json_requests{0}, query_requests{0}, auth_failures{0},
      malformed_requests{0};
};

class frontend {
 public:
  // `creds` empty means any (or no) signature is accepted; the caller only allows that on
  // loopback listeners.
  frontend(service& svc, const aws::credential_store& creds, frontend_options o = {});

  boost::asio::awaitable<http::response> handle(http::request req, http::peer_info peer);
  // A response for requests the HTTP layer could not read (413, 400).
  http::response transport_error(int status, std::string_view reason) const;
  std::string metrics_text() const;
  const frontend_stats& stats() const { return stats_; }
  fault_injector& faults() { return faults_; }

 private:
  service& svc_;
  const aws::credential_store& creds_;
  aws::verifier verifier_;
  api api_;
  frontend_options opts_;
  frontend_stats stats_;
  fault_injector faults_;

  boost::asio::awaitable<http::response> admin_faults(http::request req, http::peer_info peer,
                                                      std::string request_id);
};

}  // namespace sqsrelay::server
