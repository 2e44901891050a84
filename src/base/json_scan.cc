#include "base/json_scan.h"

#include <charconv>
#include <cstring>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sqsrelay::json_scan {

const char* skip_string(const char* p, const char* end) {
#if defined(__SSE2__)
  // 16 bytes at a time to the next quote or backslash (a memchr call per string costs more
  // than the short keys and values of typical messages).
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    auto hits = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash))));
    if (hits == 0) {
      p += 16;
      continue;
    }
    p += __builtin_ctz(hits);
    if (*p == '"') return p + 1;
    if (end - p < 2) return nullptr;
    p += 2;  // the backslash and the character it escapes
  }
#endif
  while (p < end) {
    if (*p == '"') return p + 1;
    if (*p == '\\' && ++p == end) return nullptr;
    ++p;
  }
  return nullptr;
}

const char* skip_value(const char* p, const char* end, size_t& max_depth, bool* saw_space) {
  if (p >= end) return nullptr;
  if (*p == '"') return skip_string(p + 1, end);
  if (*p != '{' && *p != '[') {
    const char* s = p;
    while (p < end && !is_ws(*p) && *p != ',' && *p != ']' && *p != '}' && *p != ':') ++p;
    return p == s ? nullptr : p;
  }
  size_t depth = 0;
  bool space = false;
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
      if (--depth == 0) {
        if (saw_space) *saw_space = space;
        return p + 1;
      }
    } else if (is_ws(c)) {
      space = true;
    }
    ++p;
  }
  return nullptr;
}

bool split_array(std::string_view array, std::vector<std::string_view>& out, const char*& fail,
                 std::vector<uint8_t>* compact) {
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
    bool space = false;
    const char* v = skip_value(p, end, depth, &space);
    if (!v) {
      fail = p;
      return false;
    }
    out.emplace_back(p, static_cast<size_t>(v - p));
    if (compact) compact->push_back(!space);
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
    if (token.empty() || ec != std::errc() || last != token.data() + token.size()) return nullptr;
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

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool valid_number(std::string_view t) {
  size_t i = 0;
  auto digits = [&] {
    size_t from = i;
    while (i < t.size() && is_digit(t[i])) ++i;
    return i > from;
  };
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && t[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < t.size() && t[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == t.size();
}

template <class T>
bool parses_as(std::string_view t) {
  T v;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

bool number_char(char c) {
  return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

}  // namespace

bool is_wide_number(std::string_view t) {
  if (!valid_number(t)) return false;
  if (t.find_first_of(".eE") == std::string_view::npos)
    return !parses_as<int64_t>(t) && !parses_as<uint64_t>(t);
  return !parses_as<double>(t);  // out of range: from_chars reports result_out_of_range
}

size_t mask_wide_numbers(std::string& text) {
  size_t n = 0;
  const char* b = text.data();
  const char* end = b + text.size();
  const char* p = b;
  while (p < end) {
    if (*p == '"') {
      p = skip_string(p + 1, end);
      if (!p) break;
      continue;
    }
    if (*p != '-' && !is_digit(*p)) {
      ++p;
      continue;
    }
    const char* s = p;
    while (p < end && number_char(*p)) ++p;
    const std::string_view token(s, static_cast<size_t>(p - s));
    if (!is_wide_number(token)) continue;
    const size_t at = static_cast<size_t>(s - b);
    text[at] = '0';
    std::memset(text.data() + at + 1, ' ', token.size() - 1);
    ++n;
  }
  return n;
}

}  // namespace sqsrelay::json_scan
