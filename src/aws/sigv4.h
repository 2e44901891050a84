// AWS Signature Version 4: the canonicalization stages, signing-key derivation, a signer for
// outgoing requests and a verifier for incoming ones. The stages follow AWS's published
// description and test suite; where that leaves room, we do exactly what botocore does (the
// cross-check in sigv4_test.cc signs a generated corpus with botocore and compares).
// Nothing here logs, and no error message ever contains a secret or a session token.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "aws/credentials.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/result.h"

namespace sqsrelay::aws {

inline constexpr std::string_view sigv4_algorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view scope_terminator = "aws4_request";
inline constexpr std::string_view unsigned_payload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view empty_payload_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// How far X-Amz-Date may be from the server clock, either way (header-signed requests).
inline constexpr std::chrono::minutes max_clock_skew{15};
// The longest X-Amz-Expires a presigned request may carry (one week, as AWS).
inline constexpr std::chrono::seconds max_presign_expiry{604800};

// Errors of the signer (the client side). The verifier reports `verify_failure` instead.
enum class errc {
  missing_host_header = 1,  // the request to sign has no Host header
  reserved_header,          // the request already carries Authorization/X-Amz-Date/token
  invalid_expiry,           // presign expiry outside 1 s .. 7 days
};
const boost::system::error_category& aws_category();
inline error_code make_error_code(errc e) { return {static_cast<int>(e), aws_category()}; }

// (name, value) pairs in wire order. Names in any case; a name may repeat.
using header_list = std::vector<std::pair<std::string_view, std::string_view>>;

// What the verifier and the signer need of a request. All views; the caller keeps the
// underlying bytes alive for the duration of the call.
struct signable_request {
  std::string_view method;
  // The raw HTTP request-target exactly as on the wire (origin-form): the path plus an optional
  // '?' and query, still percent-encoded.
  std::string_view target;
  header_list headers;
  std::string_view body;
};
// The signer's input has the same shape: the request as it will be sent, minus what the signer
// adds (Authorization, X-Amz-Date, X-Amz-Security-Token, optionally X-Amz-Content-SHA256).
using signing_input = signable_request;

// ---- Stage functions ---------------------------------------------------------------------
// Each is a pure function of its arguments; all are safe to call from any thread.

// Canonical URI from the raw (still percent-encoded) path: dot segments and empty segments are
// removed, then every byte except A-Za-z0-9 - _ . ~ and '/' is percent-encoded again (so "%20"
// on the wire becomes "%2520"). That is what AWS does for every service except S3, and exactly
// botocore's quote(remove_dot_segments(path), safe='/~'). An empty path is "/".
std::string canonical_uri(std::string_view raw_path);

enum class query_mode {
  all,             // every parameter
  drop_signature,  // all but X-Amz-Signature (presigned requests)
};
// Canonical query string from the raw query (the part after '?'). Each '&'-separated piece is
// split at its first '='; name and value are percent-decoded ('+' stays a literal '+', as in
// AWS's own signers), re-encoded with only A-Za-z0-9 - _ . ~ left bare, sorted by encoded name
// then encoded value, and joined as name=value with '&'. A piece without '=' gets an empty
// value, and an empty piece (from "&&") yields "=", both as botocore does.
std::string canonical_query_string(std::string_view raw_query, query_mode mode = query_mode::all);

// A header value as it enters the canonical request: leading and trailing whitespace removed,
// inner runs collapsed to one space. Whitespace is what Python's str.split() splits on in
// ASCII (space, \t \n \v \f \r and \x1c-\x1f), so this equals botocore's ' '.join(v.split()).
std::string trim_header_value(std::string_view value);

// A SignedHeaders list ("host;x-amz-date") as lowercased names, sorted, without duplicates or
// empty names.
std::vector<std::string> parse_signed_headers(std::string_view list);
std::string join_signed_headers(const std::vector<std::string>& sorted_names);

// One "name:value\n" line per name in `signed_names` (lowercase, sorted). The value joins, with
// ',', the trimmed values of every header of that name (case-insensitive) in wire order; a
// signed name the request lacks gets an empty value.
std::string canonical_headers(const header_list& headers,
                              const std::vector<std::string>& signed_names);

// The canonical request: method (ASCII-uppercased), canonical URI, canonical query, canonical
// headers, signed header list and payload hash, separated by '\n'.
std::string canonical_request(const signable_request& req,
                              const std::vector<std::string>& signed_names,
                              std::string_view payload_hash, query_mode mode = query_mode::all);

// "YYYYMMDD/region/service/aws4_request".
std::string credential_scope(std::string_view date, std::string_view region,
                             std::string_view service);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of the canonical request>".
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);

// HMAC chain "AWS4"+secret -> date ("YYYYMMDD") -> region -> service -> "aws4_request".
// The result is key material: callers must not log it.
sha256_digest signing_key(const secret_string& secret, std::string_view date,
                          std::string_view region, std::string_view service);

// Lowercase hex HMAC-SHA256 of the string to sign under the signing key.
std::string signature(const sha256_digest& key, std::string_view string_to_sign);

// Lowercase hex SHA-256 of the body bytes.
std::string payload_hash(std::string_view body);

// ---- Time -----------------------------------------------------------------------------

// ISO 8601 basic format, "20150830T123600Z" (UTC, truncated to the second).
std::string format_amz_date(std::chrono::system_clock::time_point t);
// Parses exactly the format above; nullopt for anything else (including invalid dates).
std::optional<std::chrono::system_clock::time_point> parse_amz_date(std::string_view s);
// Parses an HTTP Date header: "[Sun, ]30 Aug 2015 12:36:00 GMT" with zone GMT, UT, UTC, Z or
// +hhmm/-hhmm (RFC 7231 IMF-fixdate and RFC 2822; what botocore's formatdate() writes).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s);

// ---- Verifier (server side) ---------------------------------------------------------------

enum class verify_errc {
  missing_authentication_token,  // 403 MissingAuthenticationToken: no Authorization, no presign
  incomplete_signature,          // 400 IncompleteSignature: malformed or missing auth parts
  header_not_signed,             // 400 IncompleteSignature: host/date/token header not signed
  invalid_client_token_id,       // 403 InvalidClientTokenId: unknown key id or wrong token
  credential_scope_mismatch,     // 403 SignatureDoesNotMatch: scope date/region/service/term
  request_expired,               // 403 SignatureDoesNotMatch "Signature expired: ..."
  request_not_yet_valid,         // 403 SignatureDoesNotMatch "Signature not yet current: ..."
  content_sha256_mismatch,       // 400 XAmzContentSHA256Mismatch
  signature_does_not_match,      // 403 SignatureDoesNotMatch: the HMAC differs
};

// Why a request was refused, ready to be rendered as an AWS error response. `message` never
// contains the secret, the signing key, the expected signature or the session token.
struct verify_failure {
  verify_errc code;
  int http_status;
  std::string aws_code;
  std::string message;
};

struct verified {
  std::string access_key_id;
  std::string region;
  std::string service;
  bool presigned = false;
};

// Exactly one of the two; `std::get_if<verified>(&r)` is the success test.
using verify_result = std::variant<verified, verify_failure>;

// Checks SigV4 on incoming requests, from the Authorization header or from presigned query
// parameters. Thread-safe: verify() is const and keeps no state between calls.
// Keeps references to `creds` and `clk`, which must outlive it.
class verifier {
 public:
  verifier(const credential_store& creds, const clock& clk, std::string service);

  // `region` is the region this server answers for; a credential scope naming any other region
  // is refused. Signatures are compared in constant time.
  [[nodiscard]] verify_result verify(const signable_request& req, std::string_view region) const;

 private:
  const credential_store& creds_;
  const clock& clock_;
  std::string service_;
};

// ---- Signer (client side) -----------------------------------------------------------------

struct signer_options {
  bool add_content_sha256 = false;  // also send X-Amz-Content-SHA256 with the payload hash
};

// Headers for the caller to add to the request, as (name, value).
using header_fields = std::vector<std::pair<std::string, std::string>>;

// Signs outgoing requests. Signs every header of the input except the hop-by-hop and
// proxy-rewritten ones botocore also leaves out (connection, expect, keep-alive,
// proxy-authenticate, proxy-authorization, te, trailer, transfer-encoding, upgrade,
// user-agent, x-amzn-trace-id); the input must carry a Host header. If the input has an
// X-Amz-Content-SHA256 header, its value is used as the payload hash (e.g. UNSIGNED-PAYLOAD).
// Thread-safe: the derived signing keys are cached per (date, region, service) behind a mutex;
// entries for other dates are dropped when a new date is derived. Keeps a reference to `clk`.
class signer {
 public:
  signer(credentials creds, const clock& clk, signer_options opts = {});
  ~signer();
  signer(const signer&) = delete;
  signer& operator=(const signer&) = delete;

  // Headers to add, in this order: X-Amz-Date, X-Amz-Security-Token (when the credentials
  // carry one), X-Amz-Content-SHA256 (when enabled and absent), Authorization.
  [[nodiscard]] result<header_fields> sign(const signing_input& req, std::string_view region,
                                           std::string_view service) const;
  [[nodiscard]] result<header_fields> sign_at(const signing_input& req, std::string_view region,
                                              std::string_view service,
                                              std::chrono::system_clock::time_point t) const;

  // A presigned request-target: `req.target` with X-Amz-Algorithm, -Credential, -Date, -Expires,
  // -SignedHeaders (and -Security-Token) appended, then X-Amz-Signature. The payload hash is
  // that of `req.body` (empty for the usual GET), as botocore's SigV4QueryAuth.
  [[nodiscard]] result<std::string> presign(const signing_input& req, std::string_view region,
                                            std::string_view service,
                                            std::chrono::seconds expires) const;
  [[nodiscard]] result<std::string> presign_at(const signing_input& req, std::string_view region,
                                               std::string_view service,
                                               std::chrono::seconds expires,
                                               std::chrono::system_clock::time_point t) const;

 private:
  sha256_digest key_for(std::string_view date, std::string_view region,
                        std::string_view service) const;
  // The same when the caller has the credential scope (the cache key) at hand.
  sha256_digest key_for_scope(std::string_view scope, std::string_view date,
                              std::string_view region, std::string_view service) const;

  credentials creds_;
  const clock& clock_;
  signer_options opts_;
  mutable std::mutex mu_;
  // "date/region/service" -> derived key; guarded by mu_; wiped on eviction and destruction.
  mutable std::map<std::string, sha256_digest, std::less<>> keys_;
};

}  // namespace sqsrelay::aws

template <>
struct boost::system::is_error_code_enum<sqsrelay::aws::errc> : std::true_type {};
