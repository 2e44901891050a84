// batch_transport over sqs::client, and `sqs_connection`: everything a sender needs to talk
// to one SQS endpoint (HTTP pool, credentials, client) built from a few options.
//
// Threading: the connection's objects and the sender share one single-threaded executor (the
// HTTP client and the SQS client are not thread-safe); replies are therefore already on the
// sender's executor.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "base/clock.h"
#include "base/result.h"
#include "pipeline/transport.h"

namespace sqsrelay::sqs {
class client;
}
namespace sqsrelay::http {
class client;
}
namespace sqsrelay::aws {
class credential_chain;
}

namespace sqsrelay::pipeline {

// An io_context whose pending handlers its owner can destroy on purpose. When a stop
// deadline abandons messages, SendMessageBatch coroutines are still suspended on the
// context; their frames hold pooled connections and references into the SQS client, the
// HTTP pool and the sender. ~io_context would destroy them after those objects are gone (a
// use after free), so owners call destroy_handlers() once the I/O thread has stopped, while
// everything is alive, and destroy the connection and the sender after that.
class owned_io_context : public boost::asio::io_context {
 public:
  using boost::asio::io_context::io_context;
  // Shuts the services down: destroys every pending handler, none runs. Idempotent (the
  // destructor calls it again).
  void destroy_handlers() { shutdown(); }
};

class sqs_transport final : public batch_transport {
 public:
  // `client` must outlive the transport and every call in flight.
  sqs_transport(sqs::client& client, boost::asio::any_io_executor ex);

  void send_batch(const std::string& queue, std::span<const batch_entry> entries,
                  std::function<void(batch_reply)> done) override;
  void max_message_size(const std::string& queue,
                        std::function<void(result<size_t>)> done) override;

 private:
  sqs::client& client_;
  boost::asio::any_io_executor ex_;
};

// The default endpoint: the embedded server (`sqsrelay serve`).
inline constexpr const char* default_endpoint = "http://127.0.0.1:9324";

struct connection_options {
  // Empty: $AWS_ENDPOINT_URL_SQS, else $AWS_ENDPOINT_URL, else the embedded server.
  std::string endpoint_url;
  std::string region;  // empty: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1
  // Explicit keys; empty: the default chain (environment, profile, container, IMDS). Against
  // a loopback endpoint with no keys anywhere in the environment, fixed placeholder keys
  // are used (the embedded server without --credentials-file accepts any signature).
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string profile;
  std::string ca_file;
  bool verify_tls = true;
  size_t max_connections = 256;  // the sender's window cannot usefully exceed this
  std::chrono::milliseconds request_timeout{30000};
};

// Owns the HTTP pool, the credential chain and the SQS client. Create, use and destroy on
// the executor's thread (or while the executor is not running).
class sqs_connection {
 public:
  static result<std::unique_ptr<sqs_connection>> create(boost::asio::any_io_executor ex,
                                                         const connection_options& o,
                                                         std::string& error);
  ~sqs_connection();
  sqs_connection(const sqs_connection&) = delete;
  sqs_connection& operator=(const sqs_connection&) = delete;

  sqs::client& client() { return *sqs_; }
  batch_transport& transport() { return *transport_; }
  const std::string& endpoint() const { return endpoint_; }

 private:
  sqs_connection() = default;
  std::string endpoint_;
  std::unique_ptr<http::client> http_;
  std::unique_ptr<aws::credential_chain> creds_;
  std::unique_ptr<sqs::client> sqs_;
  std::unique_ptr<sqs_transport> transport_;
};

}  // namespace sqsrelay::pipeline
