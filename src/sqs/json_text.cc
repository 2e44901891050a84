#include "sqs/json_text.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sqsrelay::sqs {

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the current stretch that needs no escaping
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
#if defined(__SSE2__)
    // 16 bytes at a time to the next byte that needs escaping: bodies are mostly plain
    // text, and JSON bodies have a quote every few bytes, so the scan resumes after each.
    const __m128i ctl = _mm_set1_epi8(0x1f), quote = _mm_set1_epi8('"'),
                  slash = _mm_set1_epi8('\\');
    while (i + 16 <= n) {
      __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
      __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)));
      if (int mask = _mm_movemask_epi8(hit); mask != 0) {
        i += static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
        break;
      }
      i += 16;
    }
    if (i >= n) break;
#endif
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(s.data() + run, i - run);
    run = ++i;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
  }
  out.append(s.data() + run, n - run);
  out.push_back('"');
}

}  // namespace sqsrelay::sqs
