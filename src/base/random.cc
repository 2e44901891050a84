#include "base/random.h"

namespace sqsrelay {

void format_uuid_to(std::array<uint8_t, 16> b, char* out) {
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *out++ = '-';
    *out++ = digits[b[i] >> 4];
    *out++ = digits[b[i] & 15];
  }
}

std::string format_uuid(std::array<uint8_t, 16> b) {
  std::string out(36, '\0');
  format_uuid_to(b, out.data());
  return out;
}

}  // namespace sqsrelay
