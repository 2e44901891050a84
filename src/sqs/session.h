// Everything a command needs to talk to one SQS endpoint, wired in one place: the resolved
// endpoint (endpoint.h), the HTTP pool, the credential chain and the SQS client. Used by the
// `receive` and `queue` commands (and meant for `send`).
//
// Thread-safety: none; all objects live on the executor given to open().
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/result.hpp>

#include "aws/credential_chain.h"
#include "base/clock.h"
#include "http/client.h"
#include "sqs/client.h"
#include "sqs/endpoint.h"

namespace sqsrelay::sqs {

struct session_options {
  endpoint_request endpoint;
  bool verify_tls = true;
  size_t max_connections = 64;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  uint32_t max_attempts = 4;  // per call (client_options::max_attempts): commands retry
};

class session {
 public:
  // Fails with a message naming the setting at fault (endpoint URL, CA bundle).
  static boost::system::result<std::unique_ptr<session>, std::string> open(
      boost::asio::any_io_executor ex, session_options o, aws::env_lookup env = aws::process_env(),
      const clock& clk = system_clock::instance());
  ~session();

  const resolved_endpoint& endpoint() const { return endpoint_; }
  http::client& http() { return *http_; }
  aws::credential_chain& credentials() { return *chain_; }
  sqs::client& sqs() { return *client_; }

 private:
  session() = default;
  resolved_endpoint endpoint_;
  std::unique_ptr<http::client> http_;
  std::unique_ptr<aws::credential_chain> chain_;
  std::unique_ptr<sqs::client> client_;
};

}  // namespace sqsrelay::sqs
