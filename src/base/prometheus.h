// Helpers for the Prometheus text exposition format (the /metrics pages).
#pragma once

#include <string>
#include <string_view>

namespace sqsrelay {

// A label value escaped as the text format requires: backslash, double quote and newline.
inline std::string prometheus_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace sqsrelay
