#include "base/hash.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <string>

#include "base/random.h"

namespace sqsrelay {
namespace {

TEST(hash, md5_matches_rfc1321_vectors) {
  EXPECT_EQ(to_hex(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(to_hex(md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(hash, sha256_and_hmac_match_known_vectors) {
  EXPECT_EQ(to_hex(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test case 2.
  EXPECT_EQ(to_hex(hmac_sha256(std::string_view("Jefe"), "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(hash, hmac_matches_openssl_for_every_key_length) {
  // RFC 4231 test case 6: a key longer than the block is hashed first.
  EXPECT_EQ(to_hex(hmac_sha256(std::string(131, '\xaa'),
                               "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  std::string key, data = "AWS4-HMAC-SHA256\n20150830T123600Z\n";
  for (size_t n = 0; n <= 130; ++n) {
    std::array<uint8_t, 32> want{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), want.data(), &len);
    EXPECT_EQ(to_hex(hmac_sha256(key, data)), to_hex(want)) << "key length " << n;
    key.push_back(static_cast<char>(n * 31 + 7));
    data.push_back(static_cast<char>(n));
  }
}

TEST(hash, crc32c_matches_castagnoli_check_value) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345", 5)), 0xE3069283u);  // chained in pieces
}

TEST(hash, base64_round_trips_and_rejects_garbage) {
  std::string out;
  EXPECT_EQ(base64_encode("hello!?"), "aGVsbG8hPw==");
  ASSERT_TRUE(base64_decode("aGVsbG8hPw==", out));
  EXPECT_EQ(out, "hello!?");
  EXPECT_FALSE(base64_decode("abc", out));
  EXPECT_FALSE(base64_decode("ab$%", out));
}

TEST(hash, base64_encode_to_writes_exactly_the_encoded_length) {
  std::string data;
  for (size_t n = 0; n < 64; ++n) {
    const size_t len = 4 * ((n + 2) / 3);
    std::string buf(len + 8, '#');
    base64_encode_to(data, buf.data());
    EXPECT_EQ(buf.substr(0, len), base64_encode(data)) << n;
    EXPECT_EQ(buf.substr(len), std::string(8, '#')) << "wrote past the end, n=" << n;
    data.push_back(static_cast<char>(n * 37 + 11));
  }
}

TEST(hash, constant_time_equal_compares_content_and_length) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret1"));
}

TEST(random, uuid_has_version_and_variant_bits) {
  random_source r(42);
  auto id = format_uuid(r.next16());
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[14], '4');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
}

}  // namespace
}  // namespace sqsrelay
