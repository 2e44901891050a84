#include "sqs/message.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sqsrelay::sqs {

namespace {

// Decodes one UTF-8 sequence starting at s[i]; returns the code point and advances i,
// or returns -1 on malformed input (overlong, surrogate, truncated, > U+10FFFF).
int32_t next_code_point(std::string_view s, size_t& i) {
  auto c = static_cast<uint8_t>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) return -1;
  int32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (int k = 1; k < len; ++k) {
    auto cc = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
    if ((cc & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3f);
  }
  static constexpr int32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
  i += static_cast<size_t>(len);
  return cp;
}

bool allowed_code_point(int32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
         (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

bool valid_attribute_name(std::string_view n) {
  if (n.empty() || n.size() > 256) return false;
  if (n.front() == '.' || n.back() == '.') return false;
  if (n.find("..") != std::string_view::npos) return false;
  auto lower_prefix = [&](std::string_view p) {
    if (n.size() < p.size()) return false;
    for (size_t i = 0; i < p.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(n[i])) != p[i]) return false;
    return true;
  };
  if (lower_prefix("aws.") || lower_prefix("amazon.")) return false;
  // SQS takes letters and digits of any script ("attr.1øßä"), not other symbols ("§").
  // glibc's built-in C.UTF-8 locale classifies code points; no other library needed.
  static const locale_t utf8 = [] {
    for (const char* name : {"C.UTF-8", "C.utf8", "en_US.UTF-8"})
      if (locale_t l = newlocale(LC_CTYPE_MASK, name, locale_t{})) return l;
    return locale_t{};
  }();
  for (size_t i = 0; i < n.size();) {
    auto c = static_cast<unsigned char>(n[i]);
    if (c < 0x80) {
      if (!std::isalnum(c) && c != '_' && c != '-' && c != '.') return false;
      ++i;
      continue;
    }
    int32_t cp = next_code_point(n, i);
    if (cp < 0) return false;
    // Without a UTF-8 locale (a minimal image), any other letter passes rather than none.
    if (utf8 != locale_t{} && !iswalnum_l(static_cast<wint_t>(cp), utf8)) return false;
  }
  return true;
}

// The base type of a data type ("Number.float" -> "Number"), or empty when unsupported.
std::string_view base_type(std::string_view t) {
  auto dot = t.find('.');
  std::string_view base = t.substr(0, dot);
  if (base != "String" && base != "Number" && base != "Binary") return {};
  if (dot != std::string_view::npos && dot + 1 == t.size()) return {};
  return base;
}

// SQS numbers: optional sign, digits, optional fraction and exponent; at most 38 digits of
// precision, magnitude between 10^-128 and 10^+126.
bool valid_number(std::string_view v) {
  size_t i = 0, digits = 0;
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
  bool seen_digit = false;
  int exp10 = 0;
  bool leading = true;
  for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) {
    seen_digit = true;
    if (leading && v[i] == '0') continue;
    leading = false;
    ++digits;
    ++exp10;
  }
  if (i < v.size() && v[i] == '.') {
    for (++i; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i) {
      seen_digit = true;
      if (leading && v[i] == '0') { --exp10; continue; }
      leading = false;
      ++digits;
    }
  }
  if (!seen_digit) return false;
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    bool neg = false;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) neg = v[i++] == '-';
    if (i == v.size()) return false;
    int e = 0;
    for (; i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])); ++i)
      e = std::min(e * 10 + (v[i] - '0'), 100000);
    exp10 += neg ? -e : e;
  }
  if (i != v.size() || digits > 38) return false;
  return digits == 0 || (exp10 <= 127 && exp10 >= -127);
}

void put_u32(md5_hasher& h, size_t n) {
  uint8_t b[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                  static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  h.update(b, 4);
}

}  // namespace

bool valid_message_text(std::string_view s) {
  size_t i = 0;
#if defined(__SSE2__)
  // Fast path: 16 bytes at a time while all are printable ASCII (0x20..0x7f).
  const __m128i lo = _mm_set1_epi8(0x1f);
  while (i + 16 <= s.size()) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    // A byte >= 0x80 has its top bit set; a byte <= 0x1f equals max(byte, 0x1f).
    __m128i bad = _mm_or_si128(v, _mm_cmpeq_epi8(_mm_max_epu8(v, lo), lo));
    if (_mm_movemask_epi8(bad) != 0) break;
    i += 16;
  }
#endif
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c >= 0x20 && c < 0x80) {  // printable ASCII
      ++i;
      continue;
    }
    int32_t cp = next_code_point(s, i);
    if (cp < 0 || !allowed_code_point(cp)) return false;
  }
  return true;
}

std::string_view utf8_prefix(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

bool valid_batch_entry_id(std::string_view id) {
  if (id.empty() || id.size() > max_batch_entry_id) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::optional<api_error> validate_attributes(std::span<const attribute_view> attrs) {
  if (attrs.size() > max_message_attributes) {
    return errors::invalid_parameter_value(
        fmt::format("Number of message attributes [{}] exceeds the allowed maximum [{}].",
                    attrs.size(), max_message_attributes));
  }
  for (size_t i = 0; i < attrs.size(); ++i) {
    const auto& a = attrs[i];
    if (!valid_attribute_name(a.name)) {
      return errors::invalid_parameter_value(
          fmt::format("Message (user) attribute name '{}' is invalid. Names can contain "
                      "alphanumeric characters, '_', '-' and '.', must not start or end with "
                      "'.', contain '..', or start with 'AWS.' or 'Amazon.'.",
                      a.name.substr(0, 256)));
    }
    for (size_t j = 0; j < i; ++j)
      if (attrs[j].name == a.name)
        return errors::invalid_parameter_value(
            fmt::format("Message (user) attribute name '{}' is repeated.", a.name));
    if (a.data_type.empty())
      return errors::invalid_parameter_value(
          fmt::format("The message attribute '{}' must contain non-empty message attribute "
                      "type.",
                      a.name));
    std::string_view base = base_type(a.data_type);
    if (base.empty() || a.data_type.size() > 256 || !valid_message_text(a.data_type))
      return errors::invalid_parameter_value(fmt::format(
          "The type of message (user) attribute '{}' is invalid. You must use only the "
          "following supported type prefixes: Binary, Number, String.",
          a.name));
    bool want_binary = base == "Binary";
    if (a.binary == want_binary && a.value.empty())  // AWS's wording
      return errors::invalid_parameter_value(fmt::format(
          "Message (user) attribute '{}' must contain a non-empty value of type '{}'.", a.name,
          base));
    if (a.binary != want_binary)
      return errors::invalid_parameter_value(fmt::format(
          "The message attribute '{}' with type '{}' must use field '{}'.", a.name,
          base, want_binary ? "Binary" : "String"));
    if (!a.binary && !valid_message_text(a.value))
      return errors::invalid_parameter_value(fmt::format(
          "Message (user) attribute '{}' value contains invalid characters.", a.name));
    if (base == "Number" && !valid_number(a.value))
      return errors::invalid_parameter_value(fmt::format(
          "Value {} for parameter MessageAttributes.{} is invalid. Reason: Value must be a "
          "valid number.",
          a.value.substr(0, 64), a.name));
  }
  return std::nullopt;
}

size_t message_size(std::string_view body, std::span<const attribute_view> attrs) {
  size_t n = body.size();
  for (const auto& a : attrs) n += a.name.size() + a.data_type.size() + a.value.size();
  return n;
}

md5_digest md5_of_attributes(std::span<const attribute_view> attrs) {
  std::vector<const attribute_view*> sorted;
  sorted.reserve(attrs.size());
  for (const auto& a : attrs) sorted.push_back(&a);
  std::sort(sorted.begin(), sorted.end(),
            [](const attribute_view* x, const attribute_view* y) { return x->name < y->name; });
  thread_local md5_hasher h;
  for (const auto* a : sorted) {
    put_u32(h, a->name.size());
    h.update(a->name);
    put_u32(h, a->data_type.size());
    h.update(a->data_type);
    uint8_t transport = a->binary ? 2 : 1;
    h.update(&transport, 1);
    put_u32(h, a->value.size());
    h.update(a->value);
  }
  return h.finish();
}

bool attribute_name_selected(std::string_view name, std::span<const std::string_view> filter) {
  for (auto f : filter) {
    if (f == "All" || f == ".*" || f == "*" || f == name) return true;
    // "bar.*" selects every name starting with "bar" (as SQS does: "Hel.*" selects "Hello").
    if (f.size() >= 2 && f.substr(f.size() - 2) == ".*" &&
        name.substr(0, f.size() - 2) == f.substr(0, f.size() - 2))
      return true;
  }
  return false;
}

}  // namespace sqsrelay::sqs
