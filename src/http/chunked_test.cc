// The chunked body decoder: whole inputs, inputs fed a byte at a time, and every kind of
// malformed or oversized body.
#include "http/chunked.h"

#include <gtest/gtest.h>

#include <string>

namespace sqsrelay::http {
namespace {

struct decoded {
  chunked_decoder::status st;
  std::string body;
  size_t used = 0;
};

decoded decode(std::string_view in, size_t piece = 0, size_t limit = 1 << 20) {
  chunked_decoder d(limit);
  decoded out{chunked_decoder::status::need_more, {}, 0};
  if (piece == 0) piece = in.size();
  while (out.used < in.size() && d.state() == chunked_decoder::status::need_more) {
    // Like a socket: what was not consumed is offered again with the next bytes.
    size_t avail = std::min(in.size() - out.used, piece);
    out.used += d.feed(in.substr(out.used, avail), out.body);
    if (avail < piece) break;
  }
  out.st = d.state();
  return out;
}

TEST(chunked, decodes_chunks_extensions_and_trailers) {
  std::string in = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (size_t piece : {0u, 1u, 2u, 3u, 7u}) {
    auto d = decode(in, piece);
    EXPECT_EQ(d.st, chunked_decoder::status::done) << piece;
    EXPECT_EQ(d.body, "hello, world") << piece;
    EXPECT_EQ(in.substr(d.used), "NEXT") << piece;  // the next request is left alone
  }
}

TEST(chunked, hex_sizes_any_case_and_bare_line_feeds) {
  std::string body(0x1aB, 'x');
  auto d = decode("1aB\n" + body + "\n0\n\n");
  EXPECT_EQ(d.st, chunked_decoder::status::done);
  EXPECT_EQ(d.body, body);
}

TEST(chunked, an_empty_body) {
  auto d = decode("0\r\n\r\n");
  EXPECT_EQ(d.st, chunked_decoder::status::done);
  EXPECT_EQ(d.body, "");
}

TEST(chunked, incomplete_input_needs_more) {
  EXPECT_EQ(decode("5\r\nhel").st, chunked_decoder::status::need_more);
  EXPECT_EQ(decode("5\r\nhello\r\n0\r\n").st, chunked_decoder::status::need_more);
}

TEST(chunked, malformed_bodies_are_refused) {
  for (std::string_view bad : {"zz\r\n", "\r\n", "5 x\r\nhello\r\n", "5\r\nhelloXX\r\n0\r\n\r\n",
                               "ffffffffffffffffff\r\n"}) {
    chunked_decoder d(1 << 20);
    std::string body;
    d.feed(bad, body);
    EXPECT_EQ(d.state(), chunked_decoder::status::malformed) << bad;
    EXPECT_FALSE(d.error().empty()) << bad;
  }
  std::string trailers = "0\r\n";
  for (int i = 0; i < 100; ++i) trailers += "X-T: " + std::string(1000, 'a') + "\r\n";
  EXPECT_EQ(decode(trailers, 0, 1000).st, chunked_decoder::status::malformed);
  std::string tiny_chunks;  // 1-byte chunks with long extensions: framing far beyond the data
  for (int i = 0; i < 100; ++i) tiny_chunks += "1;" + std::string(2000, 'e') + "\r\nx\r\n";
  EXPECT_EQ(decode(tiny_chunks, 0, 1000).st, chunked_decoder::status::malformed);
  std::string long_line(chunked_decoder::max_line + 10, '1');
  EXPECT_EQ(decode(long_line).st, chunked_decoder::status::malformed);
  EXPECT_EQ(decode("0\r\n" + long_line).st, chunked_decoder::status::malformed);
}

TEST(chunked, the_body_limit_counts_every_chunk) {
  EXPECT_EQ(decode("4\r\nabcd\r\n0\r\n\r\n", 0, 4).st, chunked_decoder::status::done);
  EXPECT_EQ(decode("4\r\nabcd\r\n1\r\ne\r\n0\r\n\r\n", 0, 4).st,
            chunked_decoder::status::too_large);
  // A declared size over the limit is refused before its data arrives.
  auto d = decode("100000\r\n", 0, 1000);
  EXPECT_EQ(d.st, chunked_decoder::status::too_large);
  EXPECT_EQ(d.body, "");
}

}  // namespace
}  // namespace sqsrelay::http
