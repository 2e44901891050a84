// Server-side SigV4 verification: parse the auth parameters (Authorization header or presigned
// query), check time, scope and required signed headers, then recompute and compare.
#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "aws/sigv4.h"
#include "aws/sigv4_internal.h"

namespace sqsrelay::aws {

using namespace detail;
using std::chrono::system_clock;

namespace {

using maybe_failure = std::optional<verify_failure>;

verify_failure fail(verify_errc code, std::string message) {
  switch (code) {
    case verify_errc::missing_authentication_token:
      return {code, 403, "MissingAuthenticationToken", std::move(message)};
    case verify_errc::incomplete_signature:
    case verify_errc::header_not_signed:
      return {code, 400, "IncompleteSignature", std::move(message)};
    case verify_errc::invalid_client_token_id:
      return {code, 403, "InvalidClientTokenId", std::move(message)};
    case verify_errc::content_sha256_mismatch:
      return {code, 400, "XAmzContentSHA256Mismatch", std::move(message)};
    case verify_errc::credential_scope_mismatch:
    case verify_errc::request_expired:
    case verify_errc::request_not_yet_valid:
    case verify_errc::signature_does_not_match:
      break;
  }
  return {code, 403, "SignatureDoesNotMatch", std::move(message)};
}

// Client input echoed in a message: quoted and cut short, so a hostile header can't bloat it.
std::string echo(std::string_view input) {
  constexpr size_t max_echo = 128;
  std::string out = "'";
  out.append(input.substr(0, max_echo));
  if (input.size() > max_echo) out.append("...");
  out.append("'");
  return out;
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The authentication parameters of one request, whichever way they came.
struct auth_fields {
  bool presigned = false;
  std::string_view credential;
  std::string_view signed_headers;
  std::string_view signature;
  std::string amz_date;  // the date line of the string to sign, ISO 8601 basic format
  system_clock::time_point time;
  std::string_view date_header;     // header mode: "x-amz-date" or "date", whichever gave the time
  std::chrono::seconds expires{0};  // presigned only
  std::optional<std::string_view> token;
};

maybe_failure check_algorithm(std::string_view algorithm) {
  if (algorithm == sigv4_algorithm) return std::nullopt;
  return fail(verify_errc::incomplete_signature,
              "Unsupported AWS 'algorithm': " + echo(algorithm) + ". Expected 'AWS4-HMAC-SHA256'.");
}

maybe_failure bad_amz_date(std::string_view value) {
  return fail(verify_errc::incomplete_signature, "Date must be in ISO-8601 'basic format'. Got " +
                                                     echo(value) +
                                                     ". See http://en.wikipedia.org/wiki/ISO_8601");
}

// ---- Authorization header ---------------------------------------------------------------

// "AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=.." with the components separated
// by any mix of ',', spaces and tabs (SDKs differ), in any order. Unknown components are ignored.
maybe_failure parse_components(std::string_view rest, auth_fields& auth) {
  std::optional<std::string_view> credential, signed_headers, sig;
  size_t i = 0;
  while (i < rest.size()) {
    size_t end = rest.find_first_of(" \t,", i);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view token = rest.substr(i, end - i);
    i = end + 1;
    if (token.empty()) continue;
    size_t eq = token.find('=');
    std::string_view name = token.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : token.substr(eq + 1);
    auto* slot = name == "Credential"      ? &credential
                 : name == "SignedHeaders" ? &signed_headers
                 : name == "Signature"     ? &sig
                                           : nullptr;
    if (slot == nullptr) continue;
    if (*slot) {
      return fail(verify_errc::incomplete_signature,
                  "Authorization header has more than one '" + std::string(name) + "' parameter.");
    }
    *slot = value;
  }
  auth.credential = credential.value_or("");
  auth.signed_headers = signed_headers.value_or("");
  auth.signature = sig.value_or("");
  return std::nullopt;
}

// Fills amz_date/time/date_header from X-Amz-Date, or from Date when there is no X-Amz-Date.
// Leaves them empty when neither header is present (reported with the missing parameters).
maybe_failure parse_header_date(const header_list& headers, auth_fields& auth) {
  if (count_headers(headers, "x-amz-date") > 1) {
    return fail(verify_errc::incomplete_signature, "Multiple 'X-Amz-Date' headers.");
  }
  if (auto v = first_header(headers, "x-amz-date")) {
    std::string value = trim_header_value(*v);
    auto t = parse_amz_date(value);
    if (!t) return bad_amz_date(value);
    auth.amz_date = std::move(value);
    auth.time = *t;
    auth.date_header = "x-amz-date";
  } else if (auto d = first_header(headers, "date")) {
    auto t = parse_http_date(trim_header_value(*d));
    if (!t)
      return fail(verify_errc::incomplete_signature,
                  "Date header " + echo(*d) + " is not a valid HTTP date.");
    auth.amz_date = format_amz_date(*t);
    auth.time = *t;
    auth.date_header = "date";
  }
  return std::nullopt;
}

// AWS lists everything that is missing in one message.
maybe_failure check_header_complete(const auth_fields& auth) {
  std::string missing;
  for (auto [part, value] :
       {std::pair{"Credential", auth.credential}, std::pair{"Signature", auth.signature},
        std::pair{"SignedHeaders", auth.signed_headers}}) {
    if (value.empty()) {
      missing.append("Authorization header requires '").append(part).append("' parameter. ");
    }
  }
  if (auth.amz_date.empty()) {
    missing.append(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
  }
  if (missing.empty()) return std::nullopt;
  missing.pop_back();
  return fail(verify_errc::incomplete_signature, std::move(missing));
}

maybe_failure parse_header_auth(const signable_request& req, std::string_view authorization,
                                auth_fields& auth) {
  std::string_view value = trim_spaces(authorization);
  size_t end = value.find_first_of(" \t,");
  if (auto f = check_algorithm(value.substr(0, end))) return f;
  if (end != std::string_view::npos) {
    if (auto f = parse_components(value.substr(end), auth)) return f;
  }
  if (auto f = parse_header_date(req.headers, auth)) return f;
  if (auto f = check_header_complete(auth)) return f;
  if (count_headers(req.headers, "x-amz-security-token") > 1) {
    return fail(verify_errc::incomplete_signature, "Multiple 'X-Amz-Security-Token' headers.");
  }
  if (auto token = first_header(req.headers, "x-amz-security-token")) {
    auth.token = trim_spaces(*token);
  }
  return std::nullopt;
}

// ---- Presigned query ----------------------------------------------------------------------

using query_params = std::vector<std::pair<std::string, std::string>>;

// The value of the one parameter named `name` (exact case): nullopt when absent, and a failure
// when repeated.
maybe_failure find_param(const query_params& params, std::string_view name,
                         std::optional<std::string_view>& out) {
  out.reset();
  for (const auto& [n, v] : params) {
    if (n != name) continue;
    if (out) {
      return fail(verify_errc::incomplete_signature,
                  "Query parameter '" + std::string(name) + "' appears more than once.");
    }
    out = v;
  }
  return std::nullopt;
}

maybe_failure parse_expires(std::string_view value, std::chrono::seconds& out) {
  bool digits =
      !value.empty() && value.size() <= 9 &&
      std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    return fail(verify_errc::incomplete_signature,
                "X-Amz-Expires should be a number of seconds, got " + echo(value) + ".");
  }
  long n = 0;
  std::from_chars(value.data(), value.data() + value.size(), n);  // all digits, fits in long
  out = std::chrono::seconds(n);
  if (out > max_presign_expiry) {
    return fail(verify_errc::incomplete_signature,
                "X-Amz-Expires must be less than a week (in seconds) that is 604800");
  }
  return std::nullopt;
}

maybe_failure parse_query_auth(const query_params& params, auth_fields& auth) {
  static constexpr std::array<std::string_view, 6> names = {
      "X-Amz-Algorithm", "X-Amz-Credential",    "X-Amz-Signature",
      "X-Amz-Date",      "X-Amz-SignedHeaders", "X-Amz-Expires"};
  std::array<std::optional<std::string_view>, 6> v;
  for (size_t i = 0; i < names.size(); ++i) {
    if (auto f = find_param(params, names[i], v[i])) return f;
  }
  if (std::any_of(v.begin(), v.end(), [](const auto& p) { return !p || p->empty(); })) {
    return fail(verify_errc::incomplete_signature,
                "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
                "X-Amz-Expires parameters.");
  }
  if (auto f = check_algorithm(*v[0])) return f;
  auto t = parse_amz_date(*v[3]);
  if (!t) return bad_amz_date(*v[3]);
  if (auto f = parse_expires(*v[5], auth.expires)) return f;
  if (auto f = find_param(params, "X-Amz-Security-Token", auth.token)) return f;
  auth.presigned = true;
  auth.credential = *v[1];
  auth.signature = *v[2];
  auth.amz_date = std::string(*v[3]);
  auth.time = *t;
  auth.signed_headers = *v[4];
  return std::nullopt;
}

bool is_presign_param(const std::pair<std::string, std::string>& p) {
  return p.first == "X-Amz-Algorithm" || p.first == "X-Amz-Credential" ||
         p.first == "X-Amz-Signature";
}

// Picks the mechanism and parses its parameters. `params` must outlive `auth` (views into it).
maybe_failure extract_auth(const signable_request& req, const query_params& params,
                           auth_fields& auth) {
  auto authorization = first_header(req.headers, "authorization");
  bool in_header = authorization && !trim_spaces(*authorization).empty();
  bool in_query = std::any_of(params.begin(), params.end(), is_presign_param);
  if (in_header && in_query) {
    return fail(verify_errc::incomplete_signature,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or "
                "the Authorization header should be specified.");
  }
  if (!in_header && !in_query) {
    return fail(verify_errc::missing_authentication_token, "Missing Authentication Token");
  }
  if (in_query) return parse_query_auth(params, auth);
  if (count_headers(req.headers, "authorization") > 1) {
    return fail(verify_errc::incomplete_signature, "Multiple 'Authorization' headers.");
  }
  return parse_header_auth(req, *authorization, auth);
}

// ---- Checks ------------------------------------------------------------------------------

// Header-signed: within max_clock_skew of now, either way. Presigned: not after time+expires,
// and not more than max_clock_skew in the future. Messages follow AWS's
// "Signature expired: T is now earlier than LIMIT (NOW - 15 min.)".
maybe_failure check_time(const auth_fields& auth, system_clock::time_point now) {
  auto window = auth.presigned ? std::chrono::duration_cast<system_clock::duration>(auth.expires)
                               : std::chrono::duration_cast<system_clock::duration>(max_clock_skew);
  std::string span = auth.presigned ? std::to_string(auth.expires.count()) + " sec." : "15 min.";
  if (auth.time < now - window) {
    return fail(verify_errc::request_expired, "Signature expired: " + auth.amz_date +
                                                  " is now earlier than " +
                                                  format_amz_date(now - window) + " (" +
                                                  format_amz_date(now) + " - " + span + ")");
  }
  if (auth.time > now + max_clock_skew) {
    return fail(verify_errc::request_not_yet_valid,
                "Signature not yet current: " + auth.amz_date + " is still later than " +
                    format_amz_date(now + max_clock_skew) + " (" + format_amz_date(now) +
                    " + 15 min.)");
  }
  return std::nullopt;
}

struct scope_parts {
  std::string_view key_id, date, region, service, terminator;
};

maybe_failure parse_scope(std::string_view credential, scope_parts& scope) {
  auto parts = split(credential, '/');
  if (parts.size() != 5 ||
      std::any_of(parts.begin(), parts.end(), [](std::string_view p) { return p.empty(); })) {
    return fail(verify_errc::incomplete_signature,
                "Credential must have exactly 5 slash-delimited elements, e.g. "
                "keyid/date/region/service/term, got " +
                    echo(credential));
  }
  scope = {parts[0], parts[1], parts[2], parts[3], parts[4]};
  return std::nullopt;
}

maybe_failure check_scope(const scope_parts& scope, const auth_fields& auth,
                          std::string_view region, std::string_view service) {
  auto mismatch = [](std::string m) {
    return fail(verify_errc::credential_scope_mismatch, std::move(m));
  };
  if (scope.terminator != scope_terminator) {
    return mismatch("Credential should be scoped with a valid terminator: 'aws4_request', not " +
                    echo(scope.terminator) + ".");
  }
  std::string_view date = std::string_view(auth.amz_date).substr(0, 8);
  if (scope.date != date) {
    return mismatch(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: " +
        echo(scope.date) + " != '" + std::string(date) + "', from '" + auth.amz_date + "'.");
  }
  if (scope.region != region) {
    return mismatch("Credential should be scoped to a valid region, not " + echo(scope.region) +
                    ". This endpoint serves '" + std::string(region) + "'.");
  }
  if (scope.service != service) {
    return mismatch("Credential should be scoped to correct service: '" + std::string(service) +
                    "', not " + echo(scope.service) + ".");
  }
  return std::nullopt;
}

maybe_failure require_signed(const std::vector<std::string>& names, std::string_view lower,
                             std::string_view display) {
  if (std::binary_search(names.begin(), names.end(), lower)) return std::nullopt;
  return fail(verify_errc::header_not_signed,
              "'" + std::string(display) + "' must be a 'SignedHeader' in the AWS Authorization.");
}

// Host always; in header mode also the header that carried the time and the session token.
maybe_failure check_signed_headers(const auth_fields& auth, const std::vector<std::string>& names) {
  if (!std::binary_search(names.begin(), names.end(), std::string_view("host"))) {
    return fail(verify_errc::header_not_signed,
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (auth.presigned) return std::nullopt;
  std::string_view date_display = auth.date_header == "date" ? "Date" : "X-Amz-Date";
  if (auto f = require_signed(names, auth.date_header, date_display)) return f;
  if (auth.token) return require_signed(names, "x-amz-security-token", "X-Amz-Security-Token");
  return std::nullopt;
}

// A key issued with a session token is only valid together with that token (compared in
// constant time). A long-term key accepts a request that also carries some (signed) token.
maybe_failure check_token(const credentials& c, const auth_fields& auth) {
  if (c.session_token.empty()) return std::nullopt;
  if (auth.token && constant_time_equal(*auth.token, c.session_token)) return std::nullopt;
  return fail(verify_errc::invalid_client_token_id,
              "The security token included in the request is invalid.");
}

// The payload hash is always computed from the body received. A client-sent
// X-Amz-Content-SHA256 must equal it, except that presigned requests may send UNSIGNED-PAYLOAD
// (S3-style), which then enters the canonical request in its place.
maybe_failure resolve_payload_hash(const signable_request& req, bool presigned, std::string& hash) {
  hash = payload_hash(req.body);
  auto claimed = first_header(req.headers, "x-amz-content-sha256");
  if (!claimed) return std::nullopt;
  std::string value = trim_header_value(*claimed);
  if (value == hash) return std::nullopt;
  if (value == unsigned_payload) {
    if (presigned) {
      hash = std::move(value);
      return std::nullopt;
    }
    return fail(verify_errc::content_sha256_mismatch,
                "UNSIGNED-PAYLOAD is only accepted on presigned requests; sign the payload.");
  }
  return fail(verify_errc::content_sha256_mismatch,
              "The provided 'x-amz-content-sha256' header does not match what was computed.");
}

// Recomputes the signature and compares it with the client's in constant time.
bool signature_matches(const signable_request& req, const credentials& c, const scope_parts& scope,
                       const auth_fields& auth, const std::vector<std::string>& names,
                       std::string_view hash) {
  auto mode = auth.presigned ? query_mode::drop_signature : query_mode::all;
  std::string sts =
      string_to_sign(auth.amz_date, credential_scope(scope.date, scope.region, scope.service),
                     canonical_request(req, names, hash, mode));
  sha256_digest key = signing_key(c.secret_access_key, scope.date, scope.region, scope.service);
  std::string expected = signature(key, sts);
  secure_wipe(key.data(), key.size());
  return constant_time_equal(expected, auth.signature);
}

}  // namespace

verifier::verifier(const credential_store& creds, const clock& clk, std::string service)
    : creds_(creds), clock_(clk), service_(std::move(service)) {}

verify_result verifier::verify(const signable_request& req, std::string_view region) const {
  query_params params = decode_query(split_target(req.target).second);
  auth_fields auth;
  if (auto f = extract_auth(req, params, auth)) return std::move(*f);
  if (auto f = check_time(auth, clock_.wall())) return std::move(*f);
  scope_parts scope;
  if (auto f = parse_scope(auth.credential, scope)) return std::move(*f);
  if (auto f = check_scope(scope, auth, region, service_)) return std::move(*f);
  std::vector<std::string> names = parse_signed_headers(auth.signed_headers);
  if (auto f = check_signed_headers(auth, names)) return std::move(*f);
  const credentials* c = creds_.find(scope.key_id);
  if (c == nullptr) {
    return fail(verify_errc::invalid_client_token_id,
                "The security token included in the request is invalid.");
  }
  if (auto f = check_token(*c, auth)) return std::move(*f);
  std::string hash;
  if (auto f = resolve_payload_hash(req, auth.presigned, hash)) return std::move(*f);
  if (!signature_matches(req, *c, scope, auth, names, hash)) {
    return fail(verify_errc::signature_does_not_match,
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service "
                "documentation for details.");
  }
  return verified{std::string(scope.key_id), std::string(scope.region), std::string(scope.service),
                  auth.presigned};
}

}  // namespace sqsrelay::aws
