#include "sources/http_ingest/access_policy.h"

#include <gtest/gtest.h>

namespace sqsrelay::sources {
namespace {

namespace ip = boost::asio::ip;

ip::address addr(const char* s) { return ip::make_address(s); }

access_policy make(std::vector<std::string> tokens, std::vector<std::string> allow,
                   std::vector<std::string> proxies) {
  std::string err;
  auto p = access_policy::make(std::move(tokens), allow, proxies, err);
  EXPECT_TRUE(p) << err;
  return *p;
}

TEST(Cidr, Ipv4AndIpv6Ranges) {
  std::string err;
  auto v4 = parse_cidr("10.1.0.0/16", err);
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains(addr("10.1.200.3")));
  EXPECT_FALSE(v4->contains(addr("10.2.0.1")));
  // IPv4-mapped IPv6 peers (dual-stack sockets) match IPv4 ranges.
  EXPECT_TRUE(v4->contains(addr("::ffff:10.1.2.3")));
  auto v6 = parse_cidr("2001:db8::/32", err);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(addr("2001:db8:1::5")));
  EXPECT_FALSE(v6->contains(addr("2001:db9::1")));
  EXPECT_FALSE(v6->contains(addr("10.1.2.3")));
  auto odd = parse_cidr("192.168.1.0/23", err);
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(addr("192.168.0.77")));
  EXPECT_FALSE(odd->contains(addr("192.168.2.1")));
  auto host = parse_cidr("127.0.0.1", err);
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains(addr("127.0.0.1")));
  EXPECT_FALSE(host->contains(addr("127.0.0.2")));
  auto all = parse_cidr("0.0.0.0/0", err);
  EXPECT_TRUE(all->contains(addr("8.8.8.8")));
}

TEST(Cidr, MalformedRangesAreErrors) {
  std::string err;
  EXPECT_FALSE(parse_cidr("10.0.0.0/33", err));
  EXPECT_NE(err.find("from 0 to 32"), std::string::npos) << err;
  EXPECT_FALSE(parse_cidr("::/129", err));
  EXPECT_FALSE(parse_cidr("10.0.0/8", err));
  EXPECT_NE(err.find("not an IP address"), std::string::npos) << err;
  EXPECT_FALSE(parse_cidr("10.0.0.0/", err));
  EXPECT_FALSE(parse_cidr("10.0.0.0/8x", err));
  auto p = access_policy::make({}, {"10.0.0.0/8", "bogus"}, {}, err);
  EXPECT_FALSE(p);
  EXPECT_NE(err.find("'bogus'"), std::string::npos);
  EXPECT_FALSE(access_policy::make({""}, {}, {}, err));
}

TEST(AccessPolicy, TokensAnyOfSeveralWithOrWithoutBearer) {
  auto p = make({"s3cret-one", "s3cret-two"}, {}, {});
  EXPECT_TRUE(p.token_required());
  EXPECT_TRUE(p.token_ok("s3cret-one"));
  EXPECT_TRUE(p.token_ok("Bearer s3cret-two"));
  EXPECT_FALSE(p.token_ok("s3cret-on"));
  EXPECT_FALSE(p.token_ok("s3cret-one "));
  EXPECT_FALSE(p.token_ok(""));
  EXPECT_FALSE(p.token_ok("Bearer "));
  EXPECT_FALSE(make({}, {}, {}).token_required());
}

TEST(AccessPolicy, AllowlistOnThePeerWhenNoProxyIsTrusted) {
  auto p = make({}, {"192.0.2.0/24"}, {});
  // X-Forwarded-For from an untrusted peer is ignored: spoofing gains nothing.
  auto c = p.client_address(addr("198.51.100.7"), "192.0.2.10");
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, addr("198.51.100.7"));
  EXPECT_FALSE(p.allowed(*c));
  EXPECT_TRUE(p.allowed(addr("192.0.2.99")));
  EXPECT_TRUE(make({}, {}, {}).allowed(addr("203.0.113.1")));
}

TEST(AccessPolicy, ForwardedForFromTrustedProxiesRightToLeft) {
  auto p = make({}, {"192.0.2.0/24"}, {"10.0.0.0/8"});
  // Peer is a trusted proxy; the chain's rightmost untrusted hop is the client.
  auto c = p.client_address(addr("10.0.0.5"), "203.0.113.9, 192.0.2.10, 10.0.0.7");
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, addr("192.0.2.10"));
  EXPECT_TRUE(p.allowed(*c));
  // A client cannot smuggle an allowed address in front of its own.
  c = p.client_address(addr("10.0.0.5"), "192.0.2.10, 203.0.113.9");
  EXPECT_EQ(*c, addr("203.0.113.9"));
  EXPECT_FALSE(p.allowed(*c));
  // Ports and brackets are tolerated; garbage is an error.
  c = p.client_address(addr("10.0.0.5"), "[2001:db8::1]:443");
  EXPECT_EQ(*c, addr("2001:db8::1"));
  c = p.client_address(addr("10.0.0.5"), "192.0.2.4:5555");
  EXPECT_EQ(*c, addr("192.0.2.4"));
  EXPECT_FALSE(p.client_address(addr("10.0.0.5"), "not-an-ip"));
  // All hops trusted: the leftmost one.
  c = p.client_address(addr("10.0.0.5"), "10.9.9.9");
  EXPECT_EQ(*c, addr("10.9.9.9"));
  // No header: the peer.
  EXPECT_EQ(*p.client_address(addr("10.0.0.5"), ""), addr("10.0.0.5"));
}

}  // namespace
}  // namespace sqsrelay::sources
