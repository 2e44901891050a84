// Who may post: the token header (constant-time compare against every configured token,
// so neither which token matched nor how much of it leaks through timing), the CIDR
// allowlist decided on the client address, and X-Forwarded-For honoured only when the TCP
// peer is a trusted proxy (walked right to left, skipping trusted hops). IPv4-mapped IPv6
// addresses are compared as IPv4. Immutable after construction: safe to share by threads.
#pragma once

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sqsrelay::sources {

// An address range. IPv4 ranges are kept as IPv4-mapped IPv6 (prefix + 96).
struct cidr {
  std::array<uint8_t, 16> bytes{};
  unsigned prefix = 0;
  bool contains(const boost::asio::ip::address& a) const;
};

// "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Empty on error, with
// the reason in `err`.
std::optional<cidr> parse_cidr(std::string_view text, std::string& err);

class access_policy {
 public:
  // Fails (empty, `err` set) on a malformed CIDR in either list. Tokens are copied.
  static std::optional<access_policy> make(std::vector<std::string> tokens,
                                           const std::vector<std::string>& allow,
                                           const std::vector<std::string>& trusted_proxies,
                                           std::string& err);

  bool token_required() const { return !tokens_.empty(); }
  // `value` is the token header's value; a "Bearer " prefix is also accepted.
  bool token_ok(std::string_view value) const;

  // The client's address: the peer, or, when the peer is a trusted proxy and the request
  // has X-Forwarded-For (`xff`, all such headers joined by ','), the rightmost address not
  // itself a trusted proxy. Empty when that header is malformed.
  std::optional<boost::asio::ip::address> client_address(const boost::asio::ip::address& peer,
                                                         std::string_view xff) const;
  bool allowed(const boost::asio::ip::address& client) const;

 private:
  bool trusted(const boost::asio::ip::address& a) const;
  std::vector<std::string> tokens_;
  std::vector<cidr> allow_, trusted_;
};

}  // namespace sqsrelay::sources
