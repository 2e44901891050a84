#include "aws/sigv4.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "aws/sigv4_internal.h"

namespace sqsrelay::aws {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

system_clock::time_point at(std::string_view amz_date) { return parse_amz_date(amz_date).value(); }

// A request that owns its bytes; view() is what the verifier and the signer take.
struct owned_request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  signable_request view() const {
    signable_request r{method, target, {}, body};
    for (const auto& [n, v] : headers) r.headers.emplace_back(n, v);
    return r;
  }
  void set_header(std::string_view name, std::string value) {
    for (auto& [n, v] : headers) {
      if (detail::iequals(n, name)) v = std::move(value);
    }
  }
  void remove_header(std::string_view name) {
    std::erase_if(headers, [&](const auto& h) { return detail::iequals(h.first, name); });
  }
  std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (detail::iequals(n, name)) return v;
    }
    return {};
  }
};

// ---- 1. AWS's published worked examples --------------------------------------------------

constexpr std::string_view example_key_id = "AKIDEXAMPLE";
constexpr std::string_view example_secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

// "Examples of the complete Signature Version 4 signing process": IAM ListUsers.
TEST(sigv4_aws_example, iam_list_users_matches_every_published_stage) {
  signable_request req{"GET",
                       "/?Action=ListUsers&Version=2010-05-08",
                       {{"Host", "iam.amazonaws.com"},
                        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                        {"X-Amz-Date", "20150830T123600Z"}},
                       ""};
  auto names = parse_signed_headers("content-type;host;x-amz-date");
  std::string creq = canonical_request(req, names, payload_hash(req.body));
  EXPECT_EQ(creq,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
            "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
            "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "content-type;host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256(creq)),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  std::string sts =
      string_to_sign("20150830T123600Z", credential_scope("20150830", "us-east-1", "iam"), creq);
  EXPECT_EQ(sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  sha256_digest key =
      signing_key(secret_string(std::string(example_secret)), "20150830", "us-east-1", "iam");
  EXPECT_EQ(to_hex(key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  EXPECT_EQ(signature(key, sts),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

// "Examples of how to derive a signing key for Signature Version 4".
TEST(sigv4_aws_example, signing_key_for_20120215_matches_published_key) {
  sha256_digest key =
      signing_key(secret_string(std::string(example_secret)), "20120215", "us-east-1", "iam");
  EXPECT_EQ(to_hex(key), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(sigv4_aws_example, signer_reproduces_published_authorization_header) {
  manual_clock clk(at("20150830T123600Z"));
  signer s({std::string(example_key_id), secret_string(std::string(example_secret)), ""}, clk);
  signable_request req{"GET",
                       "/?Action=ListUsers&Version=2010-05-08",
                       {{"Host", "iam.amazonaws.com"},
                        {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}},
                       ""};
  auto added = s.sign(req, "us-east-1", "iam");
  ASSERT_TRUE(added.has_value());
  ASSERT_EQ(added->size(), 2u);
  EXPECT_EQ((*added)[0].first, "X-Amz-Date");
  EXPECT_EQ((*added)[0].second, "20150830T123600Z");
  EXPECT_EQ((*added)[1].first, "Authorization");
  EXPECT_EQ((*added)[1].second,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

// ---- The aws-sig-v4-test-suite (AKIDEXAMPLE, 20150830T123600Z, us-east-1, "service") --------

struct suite_case {
  const char* name;
  const char* method;
  const char* target;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host and X-Amz-Date
  const char* body;
  const char* canonical;  // expected canonical request
  const char* signature;  // from the suite's .authz file
};

constexpr const char* empty_hash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* suite_token =
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSP"
    "fIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT"
    "7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKml"
    "zm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

std::string vanilla_creq(const char* method, const char* uri, const char* query) {
  return std::string(method) + "\n" + uri + "\n" + query +
         "\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" +
         empty_hash;
}

std::string my_header_creq(const char* method, const char* value) {
  return std::string(method) + "\n/\n\nhost:example.amazonaws.com\nmy-header1:" + value +
         "\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" + empty_hash;
}

std::vector<suite_case> suite_cases() {
  static const std::string s_vanilla = vanilla_creq("GET", "/", "");
  static const std::string s_order_key_case =
      vanilla_creq("GET", "/", "Param1=value1&Param2=value2");
  static const std::string s_order_key = vanilla_creq("GET", "/", "Param1=Value1&Param1=value2");
  static const std::string s_order_value = vanilla_creq("GET", "/", "Param1=value1&Param1=value2");
  static const std::string unreserved =
      "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  static const std::string s_query_unreserved =
      vanilla_creq("GET", "/", (unreserved + "=" + unreserved).c_str());
  static const std::string s_utf8_query = vanilla_creq("GET", "/", "%E1%88%B4=bar");
  static const std::string s_query = vanilla_creq("GET", "/", "Param1=value1");
  static const std::string s_unreserved = vanilla_creq("GET", ("/" + unreserved).c_str(), "");
  static const std::string s_utf8 = vanilla_creq("GET", "/%E1%88%B4", "");
  static const std::string s_space = vanilla_creq("GET", "/example%20space/", "");
  static const std::string s_example = vanilla_creq("GET", "/example", "");
  static const std::string s_example_slash = vanilla_creq("GET", "/example/", "");
  static const std::string s_dup = my_header_creq("GET", "value2,value2,value1");
  static const std::string s_order = my_header_creq("GET", "value4,value1,value3,value2");
  static const std::string s_trim = std::string("GET\n/\n\nhost:example.amazonaws.com\n") +
                                    "my-header1:value1\nmy-header2:\"a b c\"\n" +
                                    "x-amz-date:20150830T123600Z\n\n" +
                                    "host;my-header1;my-header2;x-amz-date\n" + empty_hash;
  static const std::string p_vanilla = vanilla_creq("POST", "/", "");
  static const std::string p_query = vanilla_creq("POST", "/", "Param1=value1");
  static const std::string p_key_sort = my_header_creq("POST", "value1");
  static const std::string p_value_case = my_header_creq("POST", "VALUE1");
  static const std::string p_sts =
      std::string("POST\n/\n\nhost:example.amazonaws.com\n") +
      "x-amz-date:20150830T123600Z\nx-amz-security-token:" + suite_token +
      "\n\nhost;x-amz-date;x-amz-security-token\n" + empty_hash;
  auto form_creq = [](const char* type) {
    return std::string("POST\n/\n\ncontent-type:") + type +
           "\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
           "content-type;host;x-amz-date\n"
           "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
  };
  static const std::string p_form = form_creq("application/x-www-form-urlencoded");
  static const std::string p_form_params =
      form_creq("application/x-www-form-urlencoded; charset=utf8");
  static const std::string unreserved_query = "/?" + unreserved + "=" + unreserved;
  static const std::string unreserved_path = "/" + unreserved;
  const char* vanilla_sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
  using h = std::vector<std::pair<std::string, std::string>>;
  return {
      {"get-vanilla", "GET", "/", {}, "", s_vanilla.c_str(), vanilla_sig},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/?Param2=value2&Param1=value1",
       {},
       "",
       s_order_key_case.c_str(),
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-query-order-key",
       "GET",
       "/?Param1=value2&Param1=Value1",
       {},
       "",
       s_order_key.c_str(),
       "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {"get-vanilla-query-order-value",
       "GET",
       "/?Param1=value2&Param1=value1",
       {},
       "",
       s_order_value.c_str(),
       "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {"get-vanilla-query-unreserved",
       "GET",
       unreserved_query.c_str(),
       {},
       "",
       s_query_unreserved.c_str(),
       "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {"get-vanilla-utf8-query",
       "GET",
       "/?\xE1\x88\xB4=bar",
       {},
       "",
       s_utf8_query.c_str(),
       "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {"get-vanilla-empty-query-key",
       "GET",
       "/?Param1=value1",
       {},
       "",
       s_query.c_str(),
       "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      {"get-unreserved",
       "GET",
       unreserved_path.c_str(),
       {},
       "",
       s_unreserved.c_str(),
       "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {"get-utf8",
       "GET",
       "/\xE1\x88\xB4",
       {},
       "",
       s_utf8.c_str(),
       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
      {"get-space",
       "GET",
       "/example space/",
       {},
       "",
       s_space.c_str(),
       "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
      {"get-relative", "GET", "/example/..", {}, "", s_vanilla.c_str(), vanilla_sig},
      {"get-relative-relative",
       "GET",
       "/example1/example2/../..",
       {},
       "",
       s_vanilla.c_str(),
       vanilla_sig},
      {"get-slash", "GET", "//", {}, "", s_vanilla.c_str(), vanilla_sig},
      {"get-slash-dot-slash", "GET", "/./", {}, "", s_vanilla.c_str(), vanilla_sig},
      {"get-slash-pointless-dot",
       "GET",
       "/./example",
       {},
       "",
       s_example.c_str(),
       "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
      {"get-slashes",
       "GET",
       "//example//",
       {},
       "",
       s_example_slash.c_str(),
       "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {"get-header-key-duplicate", "GET", "/",
       h{{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}, "",
       s_dup.c_str(), "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {"get-header-value-order", "GET", "/",
       h{{"My-Header1", "value4"},
         {"My-Header1", "value1"},
         {"My-Header1", "value3"},
         {"My-Header1", "value2"}},
       "", s_order.c_str(), "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {"get-header-value-trim", "GET", "/",
       h{{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, "", s_trim.c_str(),
       "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      {"post-vanilla",
       "POST",
       "/",
       {},
       "",
       p_vanilla.c_str(),
       "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {"post-vanilla-query",
       "POST",
       "/?Param1=value1",
       {},
       "",
       p_query.c_str(),
       "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {"post-header-key-sort", "POST", "/", h{{"My-Header1", "value1"}}, "", p_key_sort.c_str(),
       "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {"post-header-value-case", "POST", "/", h{{"My-Header1", "VALUE1"}}, "", p_value_case.c_str(),
       "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      {"post-sts-header-before", "POST", "/", h{{"X-Amz-Security-Token", suite_token}}, "",
       p_sts.c_str(), "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
      {"post-x-www-form-urlencoded", "POST", "/",
       h{{"Content-Type", "application/x-www-form-urlencoded"}}, "Param1=value1", p_form.c_str(),
       "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
      {"post-x-www-form-urlencoded-parameters", "POST", "/",
       h{{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}}, "Param1=value1",
       p_form_params.c_str(), "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
  };
}

owned_request suite_request(const suite_case& c, bool with_date) {
  owned_request r{c.method, c.target, {{"Host", "example.amazonaws.com"}}, c.body};
  if (with_date) r.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  for (const auto& h : c.headers) r.headers.push_back(h);
  return r;
}

credentials suite_credentials(const suite_case& c) {
  bool has_token = c.headers.size() == 1 && c.headers[0].first == "X-Amz-Security-Token";
  return {std::string(example_key_id), secret_string(std::string(example_secret)),
          has_token ? suite_token : ""};
}

// Every header of the request, as a sorted lowercase SignedHeaders list.
std::vector<std::string> all_header_names(const owned_request& r) {
  std::string list;
  for (const auto& [n, v] : r.headers) list.append(n).append(";");
  return parse_signed_headers(list);
}

std::string suite_authorization(const suite_case& c) {
  return "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
         "SignedHeaders=" +
         join_signed_headers(all_header_names(suite_request(c, true))) +
         ", Signature=" + c.signature;
}

TEST(sigv4_test_suite, canonical_request_and_signature_match_each_published_case) {
  sha256_digest key =
      signing_key(secret_string(std::string(example_secret)), "20150830", "us-east-1", "service");
  for (const suite_case& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    owned_request r = suite_request(c, true);
    std::string creq = canonical_request(r.view(), all_header_names(r), payload_hash(c.body));
    EXPECT_EQ(creq, c.canonical);
    std::string sts = string_to_sign("20150830T123600Z",
                                     credential_scope("20150830", "us-east-1", "service"), creq);
    EXPECT_EQ(signature(key, sts), c.signature);
  }
}

TEST(sigv4_test_suite, string_to_sign_matches_published_sts) {
  owned_request r = suite_request(suite_cases()[1], true);  // get-vanilla-query-order-key-case
  std::string creq =
      canonical_request(r.view(), parse_signed_headers("host;x-amz-date"), payload_hash(""));
  EXPECT_EQ(string_to_sign("20150830T123600Z", credential_scope("20150830", "us-east-1", "service"),
                           creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0");
}

TEST(sigv4_test_suite, signer_produces_each_published_authorization_header) {
  manual_clock clk(at("20150830T123600Z"));
  for (const suite_case& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    owned_request r = suite_request(c, false);
    r.remove_header("X-Amz-Security-Token");  // the signer adds it from the credentials
    signer s(suite_credentials(c), clk);
    auto added = s.sign(r.view(), "us-east-1", "service");
    ASSERT_TRUE(added.has_value());
    EXPECT_EQ(added->back().first, "Authorization");
    EXPECT_EQ(added->back().second, suite_authorization(c));
  }
}

TEST(sigv4_test_suite, verifier_accepts_each_published_signed_request) {
  manual_clock clk(at("20150830T123600Z"));
  for (const suite_case& c : suite_cases()) {
    SCOPED_TRACE(c.name);
    credential_store store;
    store.add(suite_credentials(c));
    verifier v(store, clk, "service");
    owned_request r = suite_request(c, true);
    r.headers.emplace_back("Authorization", suite_authorization(c));
    auto result = v.verify(r.view(), "us-east-1");
    const auto* ok = std::get_if<verified>(&result);
    ASSERT_NE(ok, nullptr) << std::get<verify_failure>(result).message;
    EXPECT_EQ(ok->access_key_id, "AKIDEXAMPLE");
  }
}

// The suite's post-sts-header-after adds the token after signing. AWS services differ on
// whether that is allowed; we require a token to be signed.
TEST(sigv4_test_suite, unsigned_session_token_is_refused) {
  manual_clock clk(at("20150830T123600Z"));
  credential_store store;
  store.add({std::string(example_key_id), secret_string(std::string(example_secret)), suite_token});
  verifier v(store, clk, "service");
  owned_request r{"POST",
                  "/",
                  {{"Host", "example.amazonaws.com"},
                   {"X-Amz-Date", "20150830T123600Z"},
                   {"X-Amz-Security-Token", suite_token},
                   {"Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                    "aws4_request, SignedHeaders=host;x-amz-date, "
                    "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"}},
                  ""};
  auto result = v.verify(r.view(), "us-east-1");
  ASSERT_TRUE(std::holds_alternative<verify_failure>(result));
  EXPECT_EQ(std::get<verify_failure>(result).code, verify_errc::header_not_signed);
}

// ---- Canonicalization details -------------------------------------------------------------

TEST(sigv4_canonical_uri, removes_dot_and_empty_segments_then_encodes_again) {
  EXPECT_EQ(canonical_uri(""), "/");
  EXPECT_EQ(canonical_uri("/"), "/");
  EXPECT_EQ(canonical_uri("/.."), "/");
  EXPECT_EQ(canonical_uri("/a/.."), "/");
  EXPECT_EQ(canonical_uri("/a/./b/../c"), "/a/c");
  EXPECT_EQ(canonical_uri("//a//b//"), "/a/b/");
  EXPECT_EQ(canonical_uri("/a/b/.."), "/a");
  EXPECT_EQ(canonical_uri("/%2E%2E/x"), "/%252E%252E/x");  // encoded dots are not dots
  EXPECT_EQ(canonical_uri("/a%20b/c+d"), "/a%2520b/c%2Bd");
  EXPECT_EQ(canonical_uri("/!$&'()*,;=:@"), "/%21%24%26%27%28%29%2A%2C%3B%3D%3A%40");
  EXPECT_EQ(canonical_uri("/~user/-_."), "/~user/-_.");
}

TEST(sigv4_canonical_query, decodes_reencodes_and_sorts_by_name_then_value) {
  EXPECT_EQ(canonical_query_string(""), "");
  EXPECT_EQ(canonical_query_string("acl"), "acl=");
  EXPECT_EQ(canonical_query_string("b=2&a=1&a=0"), "a=0&a=1&b=2");
  EXPECT_EQ(canonical_query_string("a=%7e&b=%2f&c=/"), "a=~&b=%2F&c=%2F");
  EXPECT_EQ(canonical_query_string("a+b=c+d"), "a%2Bb=c%2Bd");  // '+' is not a space
  EXPECT_EQ(canonical_query_string("a=%20&b=%zz&c=%4"), "a=%20&b=%25zz&c=%254");
  EXPECT_EQ(canonical_query_string("x=a=b"), "x=a%3Db");
  EXPECT_EQ(canonical_query_string("a=1&&b=2"), "=&a=1&b=2");       // as botocore
  EXPECT_EQ(canonical_query_string("B=1&a=1&_=1"), "B=1&_=1&a=1");  // byte order
}

TEST(sigv4_canonical_query, presigned_mode_drops_only_the_signature) {
  EXPECT_EQ(canonical_query_string("X-Amz-Signature=ab&x-amz-signature=cd&a=1",
                                   query_mode::drop_signature),
            "a=1&x-amz-signature=cd");
}

TEST(sigv4_canonical_headers, trims_collapses_joins_repeats_in_order) {
  EXPECT_EQ(trim_header_value("  a \t b\r\n c  "), "a b c");
  EXPECT_EQ(trim_header_value("\x0b\x0cx\x1c\x1dy\x1e\x1f"), "x y");
  EXPECT_EQ(trim_header_value(" \t "), "");
  header_list h{{"X-B", " 2 "}, {"x-a", "1"}, {"X-b", "3"}, {"Ignored", "z"}};
  EXPECT_EQ(canonical_headers(h, parse_signed_headers("x-b;X-A;x-a;")), "x-a:1\nx-b:2,3\n");
  EXPECT_EQ(canonical_headers(h, {"missing"}), "missing:\n");
}

TEST(sigv4_canonical_request, uppercases_the_method) {
  signable_request req{"get", "/", {{"Host", "h"}}, ""};
  EXPECT_EQ(canonical_request(req, {"host"}, "x"), "GET\n/\n\nhost:h\n\nhost\nx");
}

TEST(sigv4_time, formats_and_parses_amz_dates) {
  EXPECT_EQ(format_amz_date(at("20240229T235959Z") + 999ms), "20240229T235959Z");
  EXPECT_EQ(format_amz_date(std::chrono::system_clock::time_point{}), "19700101T000000Z");
  for (auto t = at("19991231T235957Z"); t < at("20000101T000003Z"); t += 1s)
    EXPECT_EQ(parse_amz_date(format_amz_date(t)), t);
  EXPECT_FALSE(parse_amz_date("20150230T000000Z"));  // no 30 February
  EXPECT_FALSE(parse_amz_date("20150830T243600Z"));
  EXPECT_FALSE(parse_amz_date("20150830T123600"));
  EXPECT_FALSE(parse_amz_date("2015-08-30T12:36:00Z"));
  EXPECT_FALSE(parse_amz_date("2015083OT123600Z"));
}

TEST(sigv4_time, parses_http_dates_in_gmt_and_numeric_zones) {
  auto want = at("20150830T123600Z");
  EXPECT_EQ(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), want);
  EXPECT_EQ(parse_http_date("Sun, 30 Aug 2015 12:36:00 -0000"), want);  // botocore formatdate
  EXPECT_EQ(parse_http_date("30 Aug 2015 14:36:00 +0200"), want);
  EXPECT_EQ(parse_http_date("Sun, 30 aug 2015 07:36:00 -0500"), want);
  EXPECT_FALSE(parse_http_date("Sunday, 30-Aug-15 12:36:00 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 31 Sep 2015 12:36:00 GMT"));
  EXPECT_FALSE(parse_http_date("Sun, 30 Aug 2015 12:36:00 CEST"));
}

TEST(sigv4_secret, cannot_be_formatted_and_prints_redacted_in_tests) {
  static_assert(!fmt::is_formattable<secret_string>::value);
  secret_string s(std::string("hunter2-very-secret"));
  EXPECT_EQ(s.reveal(), "hunter2-very-secret");
  std::string printed = testing::PrintToString(s);
  EXPECT_EQ(printed.find("hunter2"), std::string::npos) << printed;
  secret_string moved = std::move(s);
  EXPECT_TRUE(s.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(moved.reveal(), "hunter2-very-secret");
}

TEST(sigv4_credential_store, finds_by_exact_key_id) {
  credential_store store;
  EXPECT_TRUE(store.empty());
  store.add({"AKID1", secret_string(std::string("one")), ""});
  store.add({"AKID1", secret_string(std::string("two")), ""});
  ASSERT_NE(store.find("AKID1"), nullptr);
  EXPECT_EQ(store.find("AKID1")->secret_access_key.reveal(), "two");
  EXPECT_EQ(store.find("akid1"), nullptr);
  EXPECT_EQ(store.size(), 1u);
}

// ---- 2. Verifier behaviour ---------------------------------------------------------------

constexpr std::string_view test_region = "us-east-1";
constexpr std::string_view test_key_id = "AKIDRELAYTEST";
constexpr std::string_view test_secret = "relay/secret+key=0123456789abcdefghij";
constexpr std::string_view temp_key_id = "ASIARELAYTEST";
constexpr std::string_view temp_secret = "temporary/secret";
constexpr std::string_view temp_token = "session/token+value==";

class sigv4_verifier_test : public testing::Test {
 protected:
  sigv4_verifier_test() {
    store_.add({std::string(test_key_id), secret_string(std::string(test_secret)), ""});
    store_.add({std::string(temp_key_id), secret_string(std::string(temp_secret)),
                std::string(temp_token)});
  }

  static owned_request send_message() {
    return {"POST",
            "/123456789012/my-queue?x=1",
            {{"Host", "sqs.us-east-1.amazonaws.com"},
             {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
             {"User-Agent", "test/1.0"}},
            "Action=SendMessage&MessageBody=hello%20world"};
  }

  credentials creds(std::string_view id = test_key_id, std::string_view sec = test_secret,
                    std::string_view tok = "") const {
    return {std::string(id), secret_string(std::string(sec)), std::string(tok)};
  }

  // Adds the signer's headers to `r`, signed at `t` (default: the clock's time).
  void sign(owned_request& r, const credentials& c, std::string_view reg = test_region,
            std::string_view service = "sqs", std::optional<system_clock::time_point> t = {},
            signer_options opts = {}) {
    signer s(credentials{c.access_key_id, c.secret_access_key, c.session_token}, clock_, opts);
    auto added = s.sign_at(r.view(), reg, service, t.value_or(clock_.wall()));
    ASSERT_TRUE(added.has_value()) << added.error().message();
    for (auto& h : *added) r.headers.push_back(std::move(h));
  }

  verify_result verify(const owned_request& r) const {
    return verifier_.verify(r.view(), test_region);
  }

  // The failure, checking that it is one and that it leaks no secret.
  verify_failure failure(const owned_request& r) const {
    auto result = verify(r);
    EXPECT_TRUE(std::holds_alternative<verify_failure>(result));
    if (!std::holds_alternative<verify_failure>(result)) return {};
    verify_failure f = std::get<verify_failure>(result);
    for (std::string_view s : {test_secret, temp_secret, temp_token}) {
      EXPECT_EQ(f.message.find(s), std::string::npos) << f.message;
    }
    return f;
  }

  void expect_verified(const owned_request& r) const {
    auto result = verify(r);
    const auto* f = std::get_if<verify_failure>(&result);
    EXPECT_EQ(f, nullptr) << (f ? f->aws_code + ": " + f->message : "");
  }

  manual_clock clock_{at("20150830T123600Z")};
  credential_store store_;
  verifier verifier_{store_, clock_, "sqs"};
};

TEST_F(sigv4_verifier_test, accepts_request_signed_by_our_signer) {
  owned_request r = send_message();
  sign(r, creds());
  auto result = verify(r);
  const auto* ok = std::get_if<verified>(&result);
  ASSERT_NE(ok, nullptr) << std::get<verify_failure>(result).message;
  EXPECT_EQ(ok->access_key_id, test_key_id);
  EXPECT_EQ(ok->region, "us-east-1");
  EXPECT_EQ(ok->service, "sqs");
  EXPECT_FALSE(ok->presigned);
}

TEST_F(sigv4_verifier_test, tolerates_spacing_and_order_of_authorization_parts) {
  owned_request r = send_message();
  sign(r, creds());
  std::string auth = r.header("Authorization");
  auto part = [&](std::string_view name) {
    size_t b = auth.find(name);
    return auth.substr(
        b, auth.find(',', b) == std::string::npos ? std::string::npos : auth.find(',', b) - b);
  };
  std::string cred = part("Credential="), sh = part("SignedHeaders="), sig = part("Signature=");
  for (std::string variant : {"AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig,
                              "AWS4-HMAC-SHA256  " + cred + " ,  " + sh + ",\t" + sig + " ",
                              "AWS4-HMAC-SHA256 " + sig + ", " + cred + ", " + sh,
                              "AWS4-HMAC-SHA256," + cred + "," + sh + "," + sig}) {
    SCOPED_TRACE(variant);
    r.set_header("Authorization", variant);
    expect_verified(r);
  }
}

TEST_F(sigv4_verifier_test, ignores_changes_to_unsigned_headers) {
  owned_request r = send_message();
  sign(r, creds());
  r.set_header("User-Agent", "something else");
  r.headers.emplace_back("X-Added-Later", "1");
  expect_verified(r);
}

TEST_F(sigv4_verifier_test, rejects_tampered_body) {
  owned_request r = send_message();
  sign(r, creds());
  r.body += "&DelaySeconds=900";
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::signature_does_not_match);
  EXPECT_EQ(f.http_status, 403);
  EXPECT_EQ(f.aws_code, "SignatureDoesNotMatch");
  EXPECT_EQ(f.message.rfind("The request signature we calculated does not match", 0), 0u);
}

TEST_F(sigv4_verifier_test, rejects_tampered_signed_header_path_or_query) {
  for (int which = 0; which < 4; ++which) {
    SCOPED_TRACE(which);
    owned_request r = send_message();
    sign(r, creds());
    if (which == 0) r.set_header("Content-Type", "application/json");
    if (which == 1) r.target = "/123456789012/other-queue?x=1";
    if (which == 2) r.target = "/123456789012/my-queue?x=2";
    if (which == 3) r.method = "PUT";
    EXPECT_EQ(failure(r).code, verify_errc::signature_does_not_match);
  }
}

TEST_F(sigv4_verifier_test, rejects_wrong_secret) {
  owned_request r = send_message();
  sign(r, creds(test_key_id, "not-the-secret"));
  EXPECT_EQ(failure(r).code, verify_errc::signature_does_not_match);
}

TEST_F(sigv4_verifier_test, rejects_unknown_access_key) {
  owned_request r = send_message();
  sign(r, creds("AKIDUNKNOWN", test_secret));
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::invalid_client_token_id);
  EXPECT_EQ(f.http_status, 403);
  EXPECT_EQ(f.aws_code, "InvalidClientTokenId");
  EXPECT_EQ(f.message, "The security token included in the request is invalid.");
}

TEST_F(sigv4_verifier_test, accepts_requests_up_to_15_minutes_old_or_early) {
  owned_request old_req = send_message();
  sign(old_req, creds());
  owned_request early_req = send_message();
  sign(early_req, creds(), test_region, "sqs", clock_.wall() + 30min);
  clock_.advance(15min);
  expect_verified(old_req);
  expect_verified(early_req);
}

TEST_F(sigv4_verifier_test, rejects_request_16_minutes_old) {
  owned_request r = send_message();
  sign(r, creds());
  clock_.advance(16min);
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::request_expired);
  EXPECT_EQ(f.http_status, 403);
  EXPECT_EQ(f.aws_code, "SignatureDoesNotMatch");
  EXPECT_EQ(f.message,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z "
            "(20150830T125200Z - 15 min.)");
}

TEST_F(sigv4_verifier_test, rejects_request_16_minutes_in_the_future) {
  owned_request r = send_message();
  sign(r, creds(), test_region, "sqs", clock_.wall() + 16min);
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::request_not_yet_valid);
  EXPECT_EQ(f.aws_code, "SignatureDoesNotMatch");
  EXPECT_EQ(f.message,
            "Signature not yet current: 20150830T125200Z is still later than 20150830T125100Z "
            "(20150830T123600Z + 15 min.)");
}

TEST_F(sigv4_verifier_test, rejects_scope_date_other_than_x_amz_date) {
  owned_request r = send_message();
  sign(r, creds(), test_region, "sqs", at("20150830T235900Z"));
  r.set_header("X-Amz-Date", "20150831T000100Z");
  clock_.advance(at("20150831T000100Z") - clock_.wall());
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::credential_scope_mismatch);
  EXPECT_EQ(f.aws_code, "SignatureDoesNotMatch");
  EXPECT_EQ(f.message,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            "HTTP: '20150830' != '20150831', from '20150831T000100Z'.");
}

TEST_F(sigv4_verifier_test, rejects_other_region_naming_the_expected_one) {
  owned_request r = send_message();
  sign(r, creds(), "eu-west-1");
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::credential_scope_mismatch);
  EXPECT_EQ(f.http_status, 403);
  EXPECT_EQ(f.message,
            "Credential should be scoped to a valid region, not 'eu-west-1'. This endpoint serves "
            "'us-east-1'.");
}

TEST_F(sigv4_verifier_test, rejects_other_service_naming_the_expected_one) {
  owned_request r = send_message();
  sign(r, creds(), test_region, "sns");
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::credential_scope_mismatch);
  EXPECT_EQ(f.message, "Credential should be scoped to correct service: 'sqs', not 'sns'.");
}

// Builds a correctly signed Authorization for an explicit SignedHeaders list, so that only the
// signed-header rules can fail.
std::string authorize(const owned_request& r, std::string_view signed_headers,
                      std::string_view amz_date = "20150830T123600Z") {
  auto names = parse_signed_headers(signed_headers);
  std::string date(amz_date.substr(0, 8));
  std::string scope = credential_scope(date, test_region, "sqs");
  std::string sts =
      string_to_sign(amz_date, scope, canonical_request(r.view(), names, payload_hash(r.body)));
  std::string sig = signature(
      signing_key(secret_string(std::string(test_secret)), date, test_region, "sqs"), sts);
  return "AWS4-HMAC-SHA256 Credential=" + std::string(test_key_id) + "/" + scope +
         ", SignedHeaders=" + join_signed_headers(names) + ", Signature=" + sig;
}

TEST_F(sigv4_verifier_test, rejects_request_whose_host_is_not_signed) {
  owned_request r = send_message();
  r.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  r.headers.emplace_back("Authorization", authorize(r, "content-type;x-amz-date"));
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::header_not_signed);
  EXPECT_EQ(f.http_status, 400);
  EXPECT_EQ(f.aws_code, "IncompleteSignature");
  EXPECT_EQ(f.message, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
}

TEST_F(sigv4_verifier_test, rejects_request_whose_x_amz_date_is_not_signed) {
  owned_request r = send_message();
  r.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  r.headers.emplace_back("Authorization", authorize(r, "host"));
  EXPECT_EQ(failure(r).code, verify_errc::header_not_signed);
}

TEST_F(sigv4_verifier_test, accepts_date_header_when_there_is_no_x_amz_date) {
  owned_request r = send_message();
  r.headers.emplace_back("Date", "Sun, 30 Aug 2015 12:36:00 GMT");
  r.headers.emplace_back("Authorization", authorize(r, "date;host"));
  expect_verified(r);
}

TEST_F(sigv4_verifier_test, rejects_missing_authentication_with_aws_code) {
  owned_request r = send_message();
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::missing_authentication_token);
  EXPECT_EQ(f.http_status, 403);
  EXPECT_EQ(f.aws_code, "MissingAuthenticationToken");
  EXPECT_EQ(f.message, "Missing Authentication Token");
}

TEST_F(sigv4_verifier_test, rejects_malformed_authorization_saying_what_is_missing) {
  struct malformed {
    std::string authorization;
    std::string message_part;
  };
  std::string cred = "Credential=AKIDRELAYTEST/20150830/us-east-1/sqs/aws4_request";
  std::string sh = "SignedHeaders=host;x-amz-date";
  std::string sig = "Signature=" + std::string(64, 'a');
  std::vector<malformed> cases = {
      {"AWS4-HMAC-SHA256 " + sh + ", " + sig,
       "Authorization header requires 'Credential' parameter."},
      {"AWS4-HMAC-SHA256 " + cred + ", " + sh, "requires 'Signature' parameter."},
      {"AWS4-HMAC-SHA256 " + cred + ", " + sig, "requires 'SignedHeaders' parameter."},
      {"AWS4-HMAC-SHA256",
       "requires 'Credential' parameter. Authorization header requires "
       "'Signature' parameter. Authorization header requires "
       "'SignedHeaders' parameter."},
      {"AWS4-HMAC-SHA256 Credential=AKIDRELAYTEST/20150830/us-east-1/sqs, " + sh + ", " + sig,
       "Credential must have exactly 5 slash-delimited elements"},
      {"AWS4-HMAC-SHA1 " + cred + ", " + sh + ", " + sig, "Unsupported AWS 'algorithm'"},
      {"AWS AKIDRELAYTEST:c2lnbmF0dXJl", "Unsupported AWS 'algorithm': 'AWS'"},
      {"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig + ", " + sig,
       "more than one 'Signature'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.authorization);
    owned_request r = send_message();
    r.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
    r.headers.emplace_back("Authorization", c.authorization);
    verify_failure f = failure(r);
    EXPECT_EQ(f.code, verify_errc::incomplete_signature);
    EXPECT_EQ(f.http_status, 400);
    EXPECT_EQ(f.aws_code, "IncompleteSignature");
    EXPECT_NE(f.message.find(c.message_part), std::string::npos) << f.message;
  }
}

TEST_F(sigv4_verifier_test, rejects_missing_or_malformed_date) {
  owned_request r = send_message();
  sign(r, creds());
  owned_request no_date = r;
  no_date.remove_header("X-Amz-Date");
  verify_failure f = failure(no_date);
  EXPECT_EQ(f.code, verify_errc::incomplete_signature);
  EXPECT_EQ(f.message,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            "header.");
  r.set_header("X-Amz-Date", "2015-08-30T12:36:00Z");
  f = failure(r);
  EXPECT_EQ(f.code, verify_errc::incomplete_signature);
  EXPECT_NE(f.message.find("Date must be in ISO-8601 'basic format'"), std::string::npos);
}

TEST_F(sigv4_verifier_test, accepts_signed_session_token_of_temporary_credentials) {
  owned_request r = send_message();
  sign(r, creds(temp_key_id, temp_secret, temp_token));
  expect_verified(r);
}

TEST_F(sigv4_verifier_test, rejects_wrong_or_missing_session_token) {
  owned_request wrong = send_message();
  sign(wrong, creds(temp_key_id, temp_secret, "another/token"));
  EXPECT_EQ(failure(wrong).code, verify_errc::invalid_client_token_id);
  owned_request missing = send_message();
  sign(missing, creds(temp_key_id, temp_secret));
  EXPECT_EQ(failure(missing).code, verify_errc::invalid_client_token_id);
}

TEST_F(sigv4_verifier_test, rejects_session_token_added_after_signing) {
  owned_request r = send_message();
  sign(r, creds());
  r.headers.emplace_back("X-Amz-Security-Token", "added/later");
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::header_not_signed);
  EXPECT_EQ(f.message, "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.");
}

TEST_F(sigv4_verifier_test, checks_x_amz_content_sha256_against_the_body) {
  owned_request r = send_message();
  sign(r, creds(), test_region, "sqs", {}, signer_options{.add_content_sha256 = true});
  EXPECT_EQ(r.header("X-Amz-Content-SHA256"), payload_hash(r.body));
  expect_verified(r);

  owned_request lying = send_message();
  lying.headers.emplace_back("X-Amz-Content-SHA256", payload_hash("something else"));
  sign(lying, creds());  // signs the header's value as the payload hash
  verify_failure f = failure(lying);
  EXPECT_EQ(f.code, verify_errc::content_sha256_mismatch);
  EXPECT_EQ(f.http_status, 400);
  EXPECT_EQ(f.aws_code, "XAmzContentSHA256Mismatch");

  owned_request unsigned_body = send_message();
  unsigned_body.headers.emplace_back("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
  sign(unsigned_body, creds());
  EXPECT_EQ(failure(unsigned_body).code, verify_errc::content_sha256_mismatch);
}

TEST_F(sigv4_verifier_test, rejects_both_auth_mechanisms_at_once) {
  owned_request r = send_message();
  sign(r, creds());
  r.target += "&X-Amz-Algorithm=AWS4-HMAC-SHA256";
  EXPECT_EQ(failure(r).code, verify_errc::incomplete_signature);
}

// ---- Presigned requests ------------------------------------------------------------------

owned_request get_queue_attributes() {
  return {"GET",
          "/123456789012/my-queue?Action=GetQueueAttributes&AttributeName.1=All",
          {{"Host", "sqs.us-east-1.amazonaws.com"}},
          ""};
}

owned_request presigned(const credentials& c, const clock& clk, std::chrono::seconds expires) {
  signer s(credentials{c.access_key_id, c.secret_access_key, c.session_token}, clk);
  owned_request r = get_queue_attributes();
  auto target = s.presign(r.view(), test_region, "sqs", expires);
  EXPECT_TRUE(target.has_value());
  if (target) r.target = *target;
  return r;
}

TEST_F(sigv4_verifier_test, accepts_presigned_request_within_its_expiry) {
  owned_request r = presigned(creds(), clock_, 300s);
  clock_.advance(300s);
  auto result = verify(r);
  const auto* ok = std::get_if<verified>(&result);
  ASSERT_NE(ok, nullptr) << std::get<verify_failure>(result).message;
  EXPECT_TRUE(ok->presigned);
}

TEST_F(sigv4_verifier_test, accepts_presigned_request_with_session_token) {
  owned_request r = presigned(creds(temp_key_id, temp_secret, temp_token), clock_, 60s);
  EXPECT_NE(r.target.find("X-Amz-Security-Token=session%2Ftoken%2Bvalue%3D%3D"), std::string::npos);
  expect_verified(r);
}

TEST_F(sigv4_verifier_test, rejects_expired_presigned_request) {
  owned_request r = presigned(creds(), clock_, 300s);
  clock_.advance(301s);
  verify_failure f = failure(r);
  EXPECT_EQ(f.code, verify_errc::request_expired);
  EXPECT_EQ(f.message,
            "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z "
            "(20150830T124101Z - 300 sec.)");
}

TEST_F(sigv4_verifier_test, rejects_presigned_request_dated_in_the_future) {
  manual_clock later(clock_.wall() + 16min);
  owned_request r = presigned(creds(), later, 3600s);
  EXPECT_EQ(failure(r).code, verify_errc::request_not_yet_valid);
}

TEST_F(sigv4_verifier_test, rejects_tampered_presigned_query) {
  owned_request r = presigned(creds(), clock_, 300s);
  r.target.replace(r.target.find("All"), 3, "Policy");
  EXPECT_EQ(failure(r).code, verify_errc::signature_does_not_match);
  owned_request longer = presigned(creds(), clock_, 300s);
  longer.target.replace(longer.target.find("X-Amz-Expires=300"), 17, "X-Amz-Expires=900");
  EXPECT_EQ(failure(longer).code, verify_errc::signature_does_not_match);
}

TEST_F(sigv4_verifier_test, rejects_incomplete_or_overlong_presign) {
  owned_request r = presigned(creds(), clock_, 300s);
  owned_request missing = r;
  size_t p = missing.target.find("&X-Amz-SignedHeaders=");
  missing.target.erase(p, missing.target.find('&', p + 1) - p);
  EXPECT_EQ(failure(missing).code, verify_errc::incomplete_signature);
  owned_request week = r;
  week.target.replace(week.target.find("X-Amz-Expires=300"), 17, "X-Amz-Expires=604801");
  verify_failure f = failure(week);
  EXPECT_EQ(f.code, verify_errc::incomplete_signature);
  EXPECT_NE(f.message.find("604800"), std::string::npos);
}

// ---- Signer ------------------------------------------------------------------------------

TEST(sigv4_signer, refuses_input_without_host_or_with_reserved_headers) {
  manual_clock clk(at("20150830T123600Z"));
  signer s({"AKID", secret_string(std::string("s")), ""}, clk);
  signable_request no_host{"GET", "/", {}, ""};
  EXPECT_EQ(s.sign(no_host, test_region, "sqs").error(), errc::missing_host_header);
  signable_request dated{"GET", "/", {{"host", "h"}, {"x-amz-date", "20150830T123600Z"}}, ""};
  EXPECT_EQ(s.sign(dated, test_region, "sqs").error(), errc::reserved_header);
  signable_request ok{"GET", "/", {{"host", "h"}}, ""};
  EXPECT_EQ(s.presign(ok, test_region, "sqs", 0s).error(), errc::invalid_expiry);
  EXPECT_EQ(s.presign(ok, test_region, "sqs", 604801s).error(), errc::invalid_expiry);
  EXPECT_EQ(make_error_code(errc::missing_host_header).message(),
            "request to sign has no Host header");
}

TEST(sigv4_signer, keeps_signing_correctly_across_a_date_change) {
  manual_clock clk(at("20150830T235959Z"));
  credential_store store;
  store.add({"AKID", secret_string(std::string("s")), ""});
  verifier v(store, clk, "sqs");
  signer s({"AKID", secret_string(std::string("s")), ""}, clk);
  for (int day = 0; day < 3; ++day) {
    owned_request r = get_queue_attributes();
    auto added = s.sign(r.view(), test_region, "sqs");
    ASSERT_TRUE(added.has_value());
    for (auto& h : *added) r.headers.push_back(h);
    auto result = v.verify(r.view(), test_region);
    EXPECT_TRUE(std::holds_alternative<verified>(result)) << day;
    clk.advance(2s);
  }
}

// ---- 3. Cross-check against botocore -----------------------------------------------------

namespace json = boost::json;

// The repository root: from SQSRELAY_SOURCE_DIR (set by ctest), else from this file's path.
std::string source_dir() {
  if (const char* dir = std::getenv("SQSRELAY_SOURCE_DIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  std::string file = __FILE__;  // <root>/src/aws/sigv4_test.cc
  for (int i = 0; i < 3; ++i) file.erase(file.find_last_of('/'));
  return file;
}

// Runs `command` and returns its standard output, or nullopt if it exited non-zero.
std::optional<std::string> run(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  if (pclose(pipe) != 0) return std::nullopt;
  return out;
}

std::string str(const json::object& o, std::string_view key) {
  return std::string(o.at(key).as_string());
}

std::vector<std::pair<std::string, std::string>> header_pairs(const json::value& v) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& h : v.as_array()) {
    out.emplace_back(std::string(h.as_array().at(0).as_string()),
                     std::string(h.as_array().at(1).as_string()));
  }
  return out;
}

// One request botocore signed (see testdata/botocore_sign.py for the fields).
struct botocore_case {
  json::object o;
  bool presigned() const { return str(o, "kind") == "presign"; }

  owned_request wire() const {
    std::string body;
    EXPECT_TRUE(base64_decode(str(o, "body_b64"), body));
    return {str(o, "method"), str(o, "target"), header_pairs(o.at("headers")), body};
  }
  owned_request input() const {
    owned_request r = wire();
    r.target = str(o, "input_target");
    r.headers = header_pairs(o.at("input_headers"));
    return r;
  }
  credentials creds() const {
    return {str(o, "access_key"), secret_string(str(o, "secret")), str(o, "token")};
  }
  // botocore's SignedHeaders, from the Authorization header or the presigned query.
  std::vector<std::string> signed_names(const owned_request& r) const {
    if (presigned()) {
      for (const auto& [n, v] : detail::decode_query(detail::split_target(r.target).second)) {
        if (n == "X-Amz-SignedHeaders") return parse_signed_headers(v);
      }
      return {};
    }
    std::string auth = str(o, "authorization");
    size_t b = auth.find("SignedHeaders=") + 14;
    return parse_signed_headers(auth.substr(b, auth.find(',', b) - b));
  }
};

// Our stage functions must reproduce botocore's canonical request and signature exactly.
void expect_same_signature(const botocore_case& c, const owned_request& r) {
  std::string claimed = r.header("X-Amz-Content-SHA256");
  std::string hash = claimed.empty() ? payload_hash(r.body) : claimed;
  auto mode = c.presigned() ? query_mode::drop_signature : query_mode::all;
  std::string creq = canonical_request(r.view(), c.signed_names(r), hash, mode);
  EXPECT_EQ(creq, str(c.o, "canonical_request"));
  std::string amz_date = str(c.o, "amz_date"), date = amz_date.substr(0, 8);
  std::string region = str(c.o, "region"), service = str(c.o, "service");
  std::string sts = string_to_sign(amz_date, credential_scope(date, region, service), creq);
  sha256_digest key = signing_key(c.creds().secret_access_key, date, region, service);
  EXPECT_EQ(signature(key, sts), str(c.o, "signature"));
}

void expect_verifier_verdict(const botocore_case& c, const owned_request& r) {
  manual_clock clk(at(str(c.o, "amz_date")) + 7s);
  credential_store store;
  store.add(c.creds());
  verifier v(store, clk, str(c.o, "service"));
  auto result = v.verify(r.view(), str(c.o, "region"));
  const auto* f = std::get_if<verify_failure>(&result);
  if (str(c.o, "expect") == "ok") {
    EXPECT_EQ(f, nullptr) << f->aws_code << ": " << f->message;
  } else {
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(str(c.o, "expect"), "content_sha256_mismatch");
    EXPECT_EQ(f->code, verify_errc::content_sha256_mismatch);
  }
}

// Given the request before botocore touched it, our signer must sign exactly as botocore.
void expect_same_signer_output(const botocore_case& c) {
  manual_clock clk(at(str(c.o, "amz_date")));
  signer s(c.creds(), clk);
  owned_request in = c.input();
  std::string region = str(c.o, "region"), service = str(c.o, "service");
  if (c.presigned()) {
    auto target =
        s.presign(in.view(), region, service, std::chrono::seconds(c.o.at("expires").as_int64()));
    ASSERT_TRUE(target.has_value());
    EXPECT_EQ(target->substr(target->rfind('=') + 1), str(c.o, "signature"));
    return;
  }
  auto added = s.sign(in.view(), region, service);
  ASSERT_TRUE(added.has_value());
  EXPECT_EQ(added->back().second, str(c.o, "authorization"));
}

TEST(sigv4_botocore, matches_botocore_on_generated_corpus) {
  if (!run("python3 -c 'import botocore' 2>/dev/null")) {
    GTEST_SKIP() << "python3 with botocore is not installed; skipping the botocore cross-check";
  }
  std::string script = source_dir() + "/src/aws/testdata/botocore_sign.py";
  auto out = run("python3 '" + script + "'");
  ASSERT_TRUE(out.has_value()) << "running " << script << " failed";
  size_t total = 0, presigned = 0, resigned = 0, refused = 0;
  for (std::string_view line : detail::split(*out, '\n')) {
    if (line.empty()) continue;
    error_code ec;
    json::value v = json::parse(line, ec);
    ASSERT_FALSE(ec) << ec.message() << ": " << line;
    botocore_case c{v.as_object()};
    SCOPED_TRACE("botocore case " + std::to_string(c.o.at("id").as_int64()) + ": " +
                 std::string(line.substr(0, 300)));
    owned_request r = c.wire();
    expect_same_signature(c, r);
    expect_verifier_verdict(c, r);
    if (c.o.at("signer_comparable").as_bool()) {
      expect_same_signer_output(c);
      ++resigned;
    }
    ++total;
    presigned += c.presigned() ? 1 : 0;
    refused += str(c.o, "expect") == "ok" ? 0 : 1;
  }
  EXPECT_GE(total, 300u);
  std::cout << "botocore cross-check: " << total << " requests (" << total - presigned
            << " header-signed, " << presigned << " presigned); " << refused
            << " expected refusals; " << resigned << " also re-signed by our signer\n";
}

}  // namespace
}  // namespace sqsrelay::aws

namespace sqsrelay::aws {
namespace {
TEST(sigv4_dates, dates_outside_the_representable_range_are_rejected) {
  EXPECT_FALSE(parse_amz_date("99991231T235959Z"));
  EXPECT_FALSE(parse_amz_date("19691231T235959Z"));
  EXPECT_FALSE(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"));
  EXPECT_TRUE(parse_amz_date("20150830T123600Z"));
}
}  // namespace
}  // namespace sqsrelay::aws
