// Fuzzes the HTTP/1.1 request reader the server uses: Beast's request_parser<string_body>
// (and the server's own chunked body decoder)
// with the server's header limit and a body limit, fed the input in pieces (the first byte
// sets the piece size) and, like a keep-alive connection, request after request.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "http/chunked.h"

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr size_t header_limit = 16u << 10;  // http::server_options::header_limit
constexpr size_t body_limit = 1u << 20;     // smaller than the default 8 MiB, same paths

void touch(const http::request<http::string_body>& req) {
  (void)req.method();
  (void)req.method_string();
  (void)req.target();
  (void)req.version();
  (void)req.keep_alive();
  (void)req.body().size();
  for (const auto& f : req) {
    (void)f.name_string();
    (void)f.value();
  }
  (void)req.find("X-Amz-Target");
  (void)req.find(http::field::content_type);
  (void)req.find(http::field::authorization);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  for (int requests = 0; requests < 16 && !in.empty(); ++requests) {
    std::optional<http::request_parser<http::string_body>> p(std::in_place);
    p->header_limit(header_limit);
    p->body_limit(body_limit);
    beast::error_code ec;
    size_t fed = 0, pending = 0;  // bytes consumed; bytes offered but not consumed yet
    // Like the server: the header first; then the body, by Beast or, when chunked, by
    // http::chunked_decoder.
    while (!p->is_header_done() && fed + pending < in.size()) {
      pending = std::min(pending + piece, in.size() - fed);
      const size_t used = p->put(boost::asio::buffer(in.data() + fed, pending), ec);
      fed += used;
      pending -= used;
      if (ec == http::error::need_more) ec = {};
      if (ec) return 0;
    }
    if (!p->is_header_done()) return 0;
    if (p->chunked()) {
      sqsrelay::http::chunked_decoder dec(body_limit);
      std::string body;
      while (dec.state() == sqsrelay::http::chunked_decoder::status::need_more &&
             fed + pending < in.size()) {
        pending = std::min(pending + piece, in.size() - fed);
        const size_t used = dec.feed(in.substr(fed, pending), body);
        fed += used;
        pending -= used;
      }
      if (dec.state() != sqsrelay::http::chunked_decoder::status::done) return 0;
      if (body.size() > body_limit) __builtin_trap();  // the limit must hold
      touch(p->get());
      in.remove_prefix(fed);
      continue;
    }
    p->eager(true);
    while (!p->is_done() && fed + pending < in.size()) {
      pending = std::min(pending + piece, in.size() - fed);
      const size_t used = p->put(boost::asio::buffer(in.data() + fed, pending), ec);
      fed += used;
      pending -= used;
      if (ec == http::error::need_more) ec = {};
      if (ec) break;
    }
    if (!ec && !p->is_done()) p->put_eof(ec);  // the peer closed the connection
    if (ec || !p->is_done()) return 0;
    touch(p->get());
    auto msg = p->release();
    (void)msg;
    in.remove_prefix(fed);
  }
  return 0;
}
