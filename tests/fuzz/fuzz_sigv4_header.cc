// Fuzzes SigV4 verification of incoming requests (Authorization header or presigned query)
// and the parsers it is built on. The input is a request in a readable text form:
//   METHOD\nTARGET\nName: value\n...\n\nBODY
// With a leading '!', the request is first signed by aws::signer (when it signs it at all)
// and the verifier must then accept it: signer and verifier must agree on canonicalization.
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "aws/sigv4.h"

namespace aws = sqsrelay::aws;

namespace {

constexpr std::string_view key_id = "AKIDEXAMPLE";
constexpr std::string_view region = "us-east-1";

// 2015-08-30T12:36:00Z, the date of AWS's SigV4 test suite, so suite-shaped seeds are fresh.
const std::chrono::system_clock::time_point now{std::chrono::seconds{1440938160}};

struct fixture {
  aws::credential_store creds;
  sqsrelay::manual_clock clk{now};
  aws::verifier verifier{creds, clk, "sqs"};
  std::unique_ptr<aws::signer> signer;
  fixture() {
    creds.add(aws::credentials{std::string(key_id),
                               aws::secret_string("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                               {}});
    signer = std::make_unique<aws::signer>(
        aws::credentials{std::string(key_id),
                         aws::secret_string("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                         {}},
        clk);
  }
};

std::string_view next_line(std::string_view& in) {
  auto nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  return line;
}

aws::signable_request parse(std::string_view in) {
  aws::signable_request r;
  r.method = next_line(in);
  r.target = next_line(in);
  while (!in.empty()) {
    std::string_view line = next_line(in);
    if (line.empty()) break;
    auto colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{}
                                                             : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    r.headers.emplace_back(name, value);
  }
  r.body = in;
  return r;
}

void exercise_parsers(const aws::signable_request& r) {
  auto q = r.target.find('?');
  (void)aws::canonical_uri(r.target.substr(0, q));
  if (q != std::string_view::npos) {
    (void)aws::canonical_query_string(r.target.substr(q + 1));
    (void)aws::canonical_query_string(r.target.substr(q + 1), aws::query_mode::drop_signature);
  }
  for (const auto& [name, value] : r.headers) {
    (void)aws::trim_header_value(value);
    (void)aws::parse_amz_date(value);
    (void)aws::parse_http_date(value);
    auto names = aws::parse_signed_headers(value);
    (void)aws::join_signed_headers(names);
    (void)aws::canonical_headers(r.headers, names);
  }
}

// RFC 9110 token: what a header name or method may be on the wire.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(c) !=
                                       std::string_view::npos)
      return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The target percent-decoded and lowercased, to look for presign parameters however spelled.
std::string decoded_lower(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      c = static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    }
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

// A request an HTTP parser would hand over: token method and names, no control characters
// (except tab) in values, a target without spaces or controls. And one the signer may sign
// as it is: no presign parameters already in the query, no X-Amz-Content-SHA256 of its own
// (the verifier rightly checks that one against the body).
bool well_formed(const aws::signable_request& r) {
  if (!is_token(r.method) || r.target.empty() || r.target.front() != '/') return false;
  if (decoded_lower(r.target).find("x-amz-") != std::string::npos) return false;
  for (char c : r.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  for (const auto& [name, value] : r.headers) {
    if (!is_token(name) || decoded_lower(name) == "x-amz-content-sha256") return false;
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// Signer and verifier must agree on every request that could arrive over HTTP.
void round_trip(const fixture& f, aws::signable_request r) {
  if (!well_formed(r)) return;
  auto added = f.signer->sign(r, region, "sqs");
  if (!added) return;
  for (const auto& [name, value] : *added) r.headers.emplace_back(name, value);
  auto v = f.verifier.verify(r, region);
  if (auto* fail = std::get_if<aws::verify_failure>(&v)) {
    std::fprintf(stderr, "signed request refused: %d %s: %s\n", fail->http_status,
                 fail->aws_code.c_str(), fail->message.c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fixture f;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const bool sign_first = !in.empty() && in.front() == '!';
  if (sign_first) in.remove_prefix(1);
  const aws::signable_request r = parse(in);
  exercise_parsers(r);
  auto v = f.verifier.verify(r, region);
  if (auto* ok = std::get_if<aws::verified>(&v); ok && ok->access_key_id != key_id)
    std::abort();  // accepted with a key the store does not hold
  if (sign_first) round_trip(f, r);
  return 0;
}
