#include "sources/http_ingest/json_scan.h"

#include <charconv>
#include <cstring>
#include <string>

namespace sqsrelay::sources::json_scan {

const char* skip_string(const char* p, const char* end) {
  while (p < end) {
    auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (!q) return nullptr;
    // The quote closes the string unless an odd run of backslashes escapes it.
    size_t backslashes = 0;
    for (const char* b = q; b > p && b[-1] == '\\'; --b) ++backslashes;
    if (backslashes % 2 == 0) return q + 1;
    p = q + 1;
  }
  return nullptr;
}

const char* skip_value(const char* p, const char* end, size_t& max_depth) {
  if (p >= end) return nullptr;
  if (*p == '"') return skip_string(p + 1, end);
  if (*p != '{' && *p != '[') {
    const char* s = p;
    while (p < end && !is_ws(*p) && *p != ',' && *p != ']' && *p != '}' && *p != ':') ++p;
    return p == s ? nullptr : p;
  }
  size_t depth = 0;
  while (p < end) {
    char c = *p;
    if (c == '"') {
      p = skip_string(p + 1, end);
      if (!p) return nullptr;
      continue;
    }
    if (c == '{' || c == '[') {
      if (++depth > max_depth) max_depth = depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return p + 1;
    }
    ++p;
  }
  return nullptr;
}

bool split_array(std::string_view array, std::vector<std::string_view>& out,
                 const char*& fail) {
  const char* end = array.data() + array.size();
  const char* p = array.data();
  if (p == end || *p != '[') {
    fail = p;
    return false;
  }
  p = skip_ws(p + 1, end);
  if (p < end && *p == ']') return true;
  for (;;) {
    size_t depth = 0;
    const char* v = skip_value(p, end, depth);
    if (!v) {
      fail = p;
      return false;
    }
    out.emplace_back(p, static_cast<size_t>(v - p));
    p = skip_ws(v, end);
    if (p < end && *p == ',') {
      p = skip_ws(p + 1, end);
      continue;
    }
    if (p < end && *p == ']') return true;
    fail = p;
    return false;
  }
}

namespace {

// Decodes one pointer token (RFC 6901: ~1 is '/', ~0 is '~').
std::string token_at(std::string_view pointer, size_t& pos) {
  std::string t;
  ++pos;  // the '/'
  while (pos < pointer.size() && pointer[pos] != '/') {
    if (pointer[pos] == '~' && pos + 1 < pointer.size()) {
      t += pointer[pos + 1] == '1' ? '/' : '~';
      pos += 2;
    } else {
      t += pointer[pos++];
    }
  }
  return t;
}

// Within the container starting at `p`, the value for `token`, or nullptr.
const char* child(const char* p, const char* end, const std::string& token) {
  bool object = *p == '{';
  size_t want = 0;
  if (!object) {
    auto [last, ec] = std::from_chars(token.data(), token.data() + token.size(), want);
    if (token.empty() || ec != std::errc() || last != token.data() + token.size())
      return nullptr;
  }
  p = skip_ws(p + 1, end);
  for (size_t i = 0; p < end && *p != '}' && *p != ']'; ++i) {
    bool match = !object && i == want;
    if (object) {
      if (*p != '"') return nullptr;
      const char* k = skip_string(p + 1, end);
      if (!k) return nullptr;
      match = std::string_view(p + 1, static_cast<size_t>(k - p - 2)) == token;
      p = skip_ws(k, end);
      if (p >= end || *p != ':') return nullptr;
      p = skip_ws(p + 1, end);
    }
    if (match) return p;
    size_t depth = 0;
    p = skip_value(p, end, depth);
    if (!p) return nullptr;
    p = skip_ws(p, end);
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
  }
  return nullptr;
}

}  // namespace

std::string_view locate(std::string_view doc, std::string_view pointer) {
  const char* p = doc.data();
  const char* end = p + doc.size();
  size_t pos = 0;
  while (pos < pointer.size()) {
    if (pointer[pos] != '/' || p >= end || (*p != '{' && *p != '[')) return {};
    p = child(p, end, token_at(pointer, pos));
    if (!p) return {};
  }
  size_t depth = 0;
  const char* v = skip_value(p, end, depth);
  if (!v) return {};
  return {p, static_cast<size_t>(v - p)};
}

}  // namespace sqsrelay::sources::json_scan
