// SigV4 stages, key derivation, time formats and the signer. The verifier is in
// sigv4_verifier.cc; helpers both use are in sigv4_internal.h.
#include "aws/sigv4.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "aws/sigv4_internal.h"

namespace sqsrelay::aws {

namespace detail {

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

void uri_encode_append(std::string_view in, bool keep_slash, std::string& out) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
}

std::string uri_encode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  uri_encode_append(in, false, out);
  return out;
}

// '%' followed by two hex digits becomes that byte; any other '%' stays literal, like Python's
// unquote. '+' is not special.
std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size()) {
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(in[i]);
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::vector<std::pair<std::string, std::string>> decode_query(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  if (raw_query.empty()) return params;
  for (std::string_view piece : split(raw_query, '&')) {
    size_t eq = piece.find('=');
    std::string_view name = piece.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : piece.substr(eq + 1);
    params.emplace_back(percent_decode(name), percent_decode(value));
  }
  return params;
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

namespace {
char lower_char(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
}  // namespace

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_char(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower_char(a[i]) != lower_char(b[i])) return false;
  }
  return true;
}

size_t count_headers(const header_list& headers, std::string_view name) {
  return static_cast<size_t>(std::count_if(headers.begin(), headers.end(),
                                           [&](const auto& h) { return iequals(h.first, name); }));
}

std::optional<std::string_view> first_header(const header_list& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

void secure_wipe(void* p, size_t n) {
  if (n != 0) OPENSSL_cleanse(p, n);
}

}  // namespace detail

using namespace detail;

// ---- Stages ------------------------------------------------------------------------------

namespace {

// RFC 3986 section 5.2.4 on '/'-separated segments, plus dropping empty segments: exactly
// botocore.utils.remove_dot_segments, on the still-encoded path ("%2E" is not a dot).
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> out;
  for (std::string_view seg : split(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  std::string result = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i != 0) result.push_back('/');
    result.append(out[i]);
  }
  if (path.back() == '/' && !out.empty()) result.push_back('/');
  return result;
}

bool is_python_space(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

}  // namespace

std::string canonical_uri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  std::string out;
  uri_encode_append(remove_dot_segments(raw_path), true, out);
  return out;
}

std::string canonical_query_string(std::string_view raw_query, query_mode mode) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (auto& [name, value] : decode_query(raw_query)) {
    if (mode == query_mode::drop_signature && name == "X-Amz-Signature") continue;
    pairs.emplace_back(uri_encode(name), uri_encode(value));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

namespace {

// trim_header_value(value) appended to `out` (no temporary per header).
void append_trimmed(std::string& out, std::string_view value) {
  if (std::none_of(value.begin(), value.end(), is_python_space)) {
    out.append(value);  // the usual header value: nothing to trim or collapse
    return;
  }
  const size_t start = out.size();
  bool pending_space = false;
  for (char c : value) {
    if (is_python_space(c)) {
      pending_space = out.size() != start;
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
}

void append_canonical_headers(std::string& out, const header_list& headers,
                              const std::vector<std::string>& signed_names) {
  for (const auto& name : signed_names) {
    out.append(name).push_back(':');
    bool first = true;
    for (const auto& [n, v] : headers) {
      if (!iequals(n, name)) continue;
      if (!first) out.push_back(',');
      append_trimmed(out, v);
      first = false;
    }
    out.push_back('\n');
  }
}

void append_signed_headers(std::string& out, const std::vector<std::string>& sorted_names) {
  for (size_t i = 0; i < sorted_names.size(); ++i) {
    if (i != 0) out.push_back(';');
    out.append(sorted_names[i]);
  }
}

}  // namespace

std::string trim_header_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  append_trimmed(out, value);
  return out;
}

std::vector<std::string> parse_signed_headers(std::string_view list) {
  std::vector<std::string> names;
  for (std::string_view name : split(list, ';')) {
    if (!name.empty()) names.push_back(ascii_lower(name));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string join_signed_headers(const std::vector<std::string>& sorted_names) {
  std::string out;
  append_signed_headers(out, sorted_names);
  return out;
}

std::string canonical_headers(const header_list& headers,
                              const std::vector<std::string>& signed_names) {
  std::string out;
  append_canonical_headers(out, headers, signed_names);
  return out;
}

std::string canonical_request(const signable_request& req,
                              const std::vector<std::string>& signed_names,
                              std::string_view payload_hash, query_mode mode) {
  auto [path, query] = split_target(req.target);
  std::string out;
  // Built once per signed request: one buffer, sized for the usual case.
  size_t headers_size = 0;
  for (const auto& [n, v] : req.headers) headers_size += n.size() + v.size() + 2;
  out.reserve(req.method.size() + req.target.size() + 2 * headers_size + payload_hash.size() +
              16);
  for (char c : req.method) out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
  out.push_back('\n');
  if (path == "/") {  // canonical already (every SQS JSON request)
    out.push_back('/');
  } else {
    out.append(canonical_uri(path));
  }
  out.push_back('\n');
  if (!query.empty()) out.append(canonical_query_string(query, mode));
  out.push_back('\n');
  append_canonical_headers(out, req.headers, signed_names);
  out.push_back('\n');
  append_signed_headers(out, signed_names);
  out.push_back('\n');
  out.append(payload_hash);
  return out;
}

std::string credential_scope(std::string_view date, std::string_view region,
                             std::string_view service) {
  std::string out(date);
  out.append("/").append(region).append("/").append(service).append("/");
  out.append(scope_terminator);
  return out;
}

std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request) {
  std::string out(sigv4_algorithm);
  out.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  out.append(to_hex(sha256(canonical_request)));
  return out;
}

sha256_digest signing_key(const secret_string& secret, std::string_view date,
                          std::string_view region, std::string_view service) {
  std::string_view s = secret.reveal();
  std::vector<uint8_t> k_secret(4 + s.size());
  std::copy_n("AWS4", 4, k_secret.begin());
  std::copy(s.begin(), s.end(), k_secret.begin() + 4);
  sha256_digest k_date = hmac_sha256(k_secret, date);
  secure_wipe(k_secret.data(), k_secret.size());
  sha256_digest k_region = hmac_sha256(k_date, region);
  sha256_digest k_service = hmac_sha256(k_region, service);
  sha256_digest k_signing = hmac_sha256(k_service, scope_terminator);
  secure_wipe(k_date.data(), k_date.size());
  secure_wipe(k_region.data(), k_region.size());
  secure_wipe(k_service.data(), k_service.size());
  return k_signing;
}

std::string signature(const sha256_digest& key, std::string_view string_to_sign) {
  return to_hex(hmac_sha256(key, string_to_sign));
}

std::string payload_hash(std::string_view body) { return to_hex(sha256(body)); }

// ---- Time ------------------------------------------------------------------------------

namespace {

using std::chrono::system_clock;

// Reads `n` decimal digits at `pos`; -1 if any is not a digit or the input is too short.
int read_digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::optional<system_clock::time_point> make_time(int y, int mo, int d, int h, int mi, int sec) {
  using namespace std::chrono;
  // system_clock counts nanoseconds in 64 bits: years past 2262 would overflow (found by
  // fuzzing). No real request is dated outside this range.
  if (y < 1970 || y > 2200) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  return sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec};
}

// "Aug" -> 8; 0 if not a month abbreviation (case-insensitive).
int month_number(std::string_view s) {
  static constexpr std::array<std::string_view, 12> names = {
      "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
  for (size_t i = 0; i < names.size(); ++i) {
    if (iequals(s, names[i])) return static_cast<int>(i) + 1;
  }
  return 0;
}

// Zone suffix of an HTTP date as an offset east of UTC; nullopt if not recognized.
std::optional<std::chrono::minutes> zone_offset(std::string_view z) {
  if (z == "GMT" || z == "UT" || z == "UTC" || z == "Z") return std::chrono::minutes{0};
  if (z.size() != 5 || (z[0] != '+' && z[0] != '-')) return std::nullopt;
  int hh = read_digits(z, 1, 2);
  int mm = read_digits(z, 3, 2);
  if (hh < 0 || mm < 0 || mm > 59) return std::nullopt;
  std::chrono::minutes off{hh * 60 + mm};
  return z[0] == '-' ? -off : off;
}

}  // namespace

std::string format_amz_date(system_clock::time_point t) {
  using namespace std::chrono;
  auto secs = floor<seconds>(t);
  auto dp = floor<days>(secs);
  year_month_day ymd{dp};
  hh_mm_ss hms{secs - dp};
  const int y = static_cast<int>(ymd.year());
  if (y < 0 || y > 9999) {  // never for a real clock; keeps snprintf's rendering
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d%02u%02uT%02d%02d%02dZ", y,
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
  }
  // Signed once per request: digits by hand, not snprintf (~0.3 us a call).
  std::string out = "00000000T000000Z";
  auto put = [&out](size_t at, int v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) out[at + i] = static_cast<char>('0' + v % 10);
  };
  put(0, y, 4);
  put(4, static_cast<int>(static_cast<unsigned>(ymd.month())), 2);
  put(6, static_cast<int>(static_cast<unsigned>(ymd.day())), 2);
  put(9, static_cast<int>(hms.hours().count()), 2);
  put(11, static_cast<int>(hms.minutes().count()), 2);
  put(13, static_cast<int>(hms.seconds().count()), 2);
  return out;
}

std::optional<system_clock::time_point> parse_amz_date(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  int y = read_digits(s, 0, 4), mo = read_digits(s, 4, 2), d = read_digits(s, 6, 2);
  int h = read_digits(s, 9, 2), mi = read_digits(s, 11, 2), sec = read_digits(s, 13, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0) return std::nullopt;
  return make_time(y, mo, d, h, mi, sec);
}

std::optional<system_clock::time_point> parse_http_date(std::string_view s) {
  // Optional "Sun, " prefix; then "30 Aug 2015 12:36:00 GMT" as five space-separated fields.
  if (size_t comma = s.find(','); comma != std::string_view::npos) s.remove_prefix(comma + 1);
  std::vector<std::string_view> f;
  for (std::string_view part : split(s, ' ')) {
    if (!part.empty()) f.push_back(part);
  }
  if (f.size() != 5 || f[0].size() > 2 || f[2].size() != 4 || f[3].size() != 8) {
    return std::nullopt;
  }
  int d = read_digits(f[0], 0, f[0].size()), mo = month_number(f[1]);
  int y = read_digits(f[2], 0, 4);
  int h = read_digits(f[3], 0, 2), mi = read_digits(f[3], 3, 2), sec = read_digits(f[3], 6, 2);
  auto off = zone_offset(f[4]);
  if (d < 0 || mo == 0 || y < 0 || h < 0 || mi < 0 || sec < 0 || f[3][2] != ':' || f[3][5] != ':' ||
      !off) {
    return std::nullopt;
  }
  auto t = make_time(y, mo, d, h, mi, sec);
  if (!t) return std::nullopt;
  return *t - *off;
}

// ---- Signer ------------------------------------------------------------------------------

namespace {

// Headers botocore never signs (SIGNED_HEADERS_BLACKLIST): hop-by-hop, or rewritten by
// proxies and HTTP stacks on the way.
bool is_unsignable(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 11> names = {"connection",
                                                             "expect",
                                                             "keep-alive",
                                                             "proxy-authenticate",
                                                             "proxy-authorization",
                                                             "te",
                                                             "trailer",
                                                             "transfer-encoding",
                                                             "upgrade",
                                                             "user-agent",
                                                             "x-amzn-trace-id"};
  return std::find(names.begin(), names.end(), lower_name) != names.end();
}

std::vector<std::string> names_to_sign(const header_list& headers) {
  std::vector<std::string> names;
  for (const auto& [n, v] : headers) {
    std::string lower = ascii_lower(n);
    if (!is_unsignable(lower)) names.push_back(std::move(lower));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// The caller's request must name its host and must not carry what the signer adds.
error_code check_signing_input(const signing_input& req) {
  if (count_headers(req.headers, "host") == 0) return errc::missing_host_header;
  for (std::string_view reserved : {"authorization", "x-amz-date", "x-amz-security-token"}) {
    if (count_headers(req.headers, reserved) != 0) return errc::reserved_header;
  }
  return {};
}

std::string authorization_value(std::string_view key_id, std::string_view scope,
                                std::string_view signed_headers, std::string_view sig) {
  std::string out(sigv4_algorithm);
  out.append(" Credential=").append(key_id).append("/").append(scope);
  out.append(", SignedHeaders=").append(signed_headers);
  out.append(", Signature=").append(sig);
  return out;
}

void append_param(std::string& query, std::string_view name, std::string_view value) {
  if (!query.empty()) query.push_back('&');
  query.append(name).push_back('=');
  uri_encode_append(value, false, query);
}

}  // namespace

signer::signer(credentials creds, const clock& clk, signer_options opts)
    : creds_(std::move(creds)), clock_(clk), opts_(opts) {}

signer::~signer() {
  for (auto& [scope, key] : keys_) secure_wipe(key.data(), key.size());
}

sha256_digest signer::key_for(std::string_view date, std::string_view region,
                              std::string_view service) const {
  return key_for_scope(credential_scope(date, region, service), date, region, service);
}

sha256_digest signer::key_for_scope(std::string_view scope, std::string_view date,
                                    std::string_view region, std::string_view service) const {
  std::lock_guard lock(mu_);
  if (auto it = keys_.find(scope); it != keys_.end()) return it->second;
  // A new date: the other days' keys will not be needed again.
  for (auto it = keys_.begin(); it != keys_.end();) {
    if (std::string_view(it->first).substr(0, 8) == date) {
      ++it;
      continue;
    }
    secure_wipe(it->second.data(), it->second.size());
    it = keys_.erase(it);
  }
  sha256_digest key = signing_key(creds_.secret_access_key, date, region, service);
  keys_.emplace(std::string(scope), key);
  return key;
}

result<header_fields> signer::sign(const signing_input& req, std::string_view region,
                                   std::string_view service) const {
  return sign_at(req, region, service, clock_.wall());
}

result<header_fields> signer::sign_at(const signing_input& req, std::string_view region,
                                      std::string_view service,
                                      std::chrono::system_clock::time_point t) const {
  if (error_code ec = check_signing_input(req)) return ec;
  std::string amz_date = format_amz_date(t);
  std::string_view date = std::string_view(amz_date).substr(0, 8);
  auto client_hash = first_header(req.headers, "x-amz-content-sha256");
  std::string hash = client_hash ? trim_header_value(*client_hash) : payload_hash(req.body);

  header_fields added;
  added.reserve(4);  // date, token, content hash, authorization
  added.emplace_back("X-Amz-Date", amz_date);
  if (!creds_.session_token.empty())
    added.emplace_back("X-Amz-Security-Token", creds_.session_token);
  if (opts_.add_content_sha256 && !client_hash) added.emplace_back("X-Amz-Content-SHA256", hash);

  signable_request full{req.method, req.target, {}, req.body};
  full.headers.reserve(req.headers.size() + added.size());
  full.headers.assign(req.headers.begin(), req.headers.end());
  for (const auto& [n, v] : added) full.headers.emplace_back(n, v);
  std::vector<std::string> names = names_to_sign(full.headers);
  std::string scope = credential_scope(date, region, service);
  std::string sts = string_to_sign(amz_date, scope, canonical_request(full, names, hash));
  std::string sig = signature(key_for_scope(scope, date, region, service), sts);
  added.emplace_back("Authorization", authorization_value(creds_.access_key_id, scope,
                                                          join_signed_headers(names), sig));
  return added;
}

result<std::string> signer::presign(const signing_input& req, std::string_view region,
                                    std::string_view service, std::chrono::seconds expires) const {
  return presign_at(req, region, service, expires, clock_.wall());
}

result<std::string> signer::presign_at(const signing_input& req, std::string_view region,
                                       std::string_view service, std::chrono::seconds expires,
                                       std::chrono::system_clock::time_point t) const {
  if (error_code ec = check_signing_input(req)) return ec;
  if (expires.count() < 1 || expires > max_presign_expiry) return errc::invalid_expiry;
  std::string amz_date = format_amz_date(t);
  std::string_view date = std::string_view(amz_date).substr(0, 8);
  std::string scope = credential_scope(date, region, service);
  std::vector<std::string> names = names_to_sign(req.headers);

  std::string auth_query;
  append_param(auth_query, "X-Amz-Algorithm", sigv4_algorithm);
  append_param(auth_query, "X-Amz-Credential", creds_.access_key_id + "/" + scope);
  append_param(auth_query, "X-Amz-Date", amz_date);
  append_param(auth_query, "X-Amz-Expires", std::to_string(expires.count()));
  append_param(auth_query, "X-Amz-SignedHeaders", join_signed_headers(names));
  if (!creds_.session_token.empty()) {
    append_param(auth_query, "X-Amz-Security-Token", creds_.session_token);
  }
  auto [path, query] = split_target(req.target);
  std::string target(path);
  target.append("?").append(query).append(query.empty() ? "" : "&").append(auth_query);

  signable_request presigned = req;
  presigned.target = target;
  std::string sts =
      string_to_sign(amz_date, scope, canonical_request(presigned, names, payload_hash(req.body)));
  target.append("&X-Amz-Signature=").append(signature(key_for(date, region, service), sts));
  return target;
}

// ---- Error category ----------------------------------------------------------------------

namespace {

// boost::system::error_category has a protected non-virtual destructor by design (categories
// are never deleted through a base pointer), which -Wnon-virtual-dtor flags regardless.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class aws_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "sqsrelay.aws"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::missing_host_header:
        return "request to sign has no Host header";
      case errc::reserved_header:
        return "request to sign already carries Authorization, X-Amz-Date or "
               "X-Amz-Security-Token";
      case errc::invalid_expiry:
        return "presign expiry must be between 1 second and 7 days";
    }
    return "unknown aws error";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& aws_category() {
  static const aws_category_impl category;
  return category;
}

}  // namespace sqsrelay::aws
