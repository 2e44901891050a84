#include "sources/http_ingest/access_policy.h"

#include <fmt/format.h>

#include <charconv>

#include "base/hash.h"

namespace sqsrelay::sources {

namespace ip = boost::asio::ip;

namespace {

std::array<uint8_t, 16> as_v6_bytes(const ip::address& a) {
  if (a.is_v4()) return ip::make_address_v6(ip::v4_mapped, a.to_v4()).to_bytes();
  return a.to_v6().to_bytes();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One X-Forwarded-For entry: an address, "[v6]:port" or "v4:port".
std::optional<ip::address> parse_forwarded(std::string_view s) {
  boost::system::error_code ec;
  auto a = ip::make_address(s, ec);
  if (!ec) return a;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    a = ip::make_address(s.substr(1, close - 1), ec);
  } else {
    auto colon = s.find(':');
    if (colon == std::string_view::npos || s.find(':', colon + 1) != std::string_view::npos)
      return std::nullopt;
    a = ip::make_address(s.substr(0, colon), ec);
  }
  if (ec) return std::nullopt;
  return a;
}

}  // namespace

bool cidr::contains(const ip::address& a) const {
  auto b = as_v6_bytes(a);
  unsigned full = prefix / 8, rest = prefix % 8;
  for (unsigned i = 0; i < full; ++i)
    if (b[i] != bytes[i]) return false;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (b[full] & mask) == (bytes[full] & mask);
}

std::optional<cidr> parse_cidr(std::string_view text, std::string& err) {
  text = trim(text);
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto addr = ip::make_address(text.substr(0, slash), ec);
  if (ec) {
    err = fmt::format("'{}' is not an IP address or CIDR range", text);
    return std::nullopt;
  }
  unsigned max = addr.is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, pec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || pec != std::errc() || end != digits.data() + digits.size() ||
        prefix > max) {
      err = fmt::format("'{}': the prefix length must be a number from 0 to {}", text, max);
      return std::nullopt;
    }
  }
  cidr c;
  c.bytes = as_v6_bytes(addr);
  c.prefix = addr.is_v4() ? prefix + 96 : prefix;
  return c;
}

std::optional<access_policy> access_policy::make(std::vector<std::string> tokens,
                                                 const std::vector<std::string>& allow,
                                                 const std::vector<std::string>& trusted_proxies,
                                                 std::string& err) {
  access_policy p;
  for (auto& t : tokens) {
    if (t.empty()) {
      err = "an ingest token is empty";
      return std::nullopt;
    }
  }
  p.tokens_ = std::move(tokens);
  for (const auto& s : allow) {
    auto c = parse_cidr(s, err);
    if (!c) return std::nullopt;
    p.allow_.push_back(*c);
  }
  for (const auto& s : trusted_proxies) {
    auto c = parse_cidr(s, err);
    if (!c) return std::nullopt;
    p.trusted_.push_back(*c);
  }
  return p;
}

bool access_policy::token_ok(std::string_view value) const {
  std::string_view bare = value;
  if (bare.size() > 7 && (bare.substr(0, 7) == "Bearer " || bare.substr(0, 7) == "bearer "))
    bare.remove_prefix(7);
  // Every token is compared against both forms, no early exit: the time depends only on
  // the lengths, never on which token matched or where a guess went wrong.
  bool ok = false;
  for (const auto& t : tokens_) {
    ok |= constant_time_equal(value, t);
    ok |= constant_time_equal(bare, t);
  }
  return ok;
}

bool access_policy::trusted(const ip::address& a) const {
  for (const auto& c : trusted_)
    if (c.contains(a)) return true;
  return false;
}

std::optional<ip::address> access_policy::client_address(const ip::address& peer,
                                                         std::string_view xff) const {
  if (xff.empty() || !trusted(peer)) return peer;
  ip::address client = peer;
  while (!xff.empty()) {
    auto comma = xff.rfind(',');
    std::string_view item = trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
    xff = comma == std::string_view::npos ? std::string_view{} : xff.substr(0, comma);
    if (item.empty()) continue;
    auto a = parse_forwarded(item);
    if (!a) return std::nullopt;
    client = *a;
    if (!trusted(client)) break;  // the first untrusted hop from the right is the client
  }
  return client;
}

bool access_policy::allowed(const ip::address& client) const {
  if (allow_.empty()) return true;
  for (const auto& c : allow_)
    if (c.contains(client)) return true;
  return false;
}

}  // namespace sqsrelay::sources
