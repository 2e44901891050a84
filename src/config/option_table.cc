#include "config/option_table.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>

namespace sqsrelay::config {

std::string_view kind_name(value_kind k) {
  switch (k) {
    case value_kind::string:
      return "string";
    case value_kind::boolean:
      return "bool";
    case value_kind::integer:
      return "integer";
    case value_kind::bytes:
      return "size";
    case value_kind::duration:
      return "duration";
    case value_kind::string_list:
      return "[string]";
    case value_kind::choice:
      return "choice";
  }
  return "?";
}

namespace {

struct unit {
  std::string_view name;
  uint64_t factor;
};

bool parse_number(std::string_view text, uint64_t& n, std::string_view& rest) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return false;
  rest = text.substr(static_cast<size_t>(end - text.data()));
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return true;
}

std::optional<uint64_t> scaled(uint64_t n, uint64_t factor) {
  if (factor && n > std::numeric_limits<uint64_t>::max() / factor) return std::nullopt;
  return n * factor;
}

}  // namespace

std::optional<uint64_t> parse_bytes(std::string_view text) {
  static constexpr unit units[] = {{"", 1},
                                   {"B", 1},
                                   {"KB", 1000},
                                   {"MB", 1000000},
                                   {"GB", 1000000000},
                                   {"TB", 1000000000000},
                                   {"KiB", 1ull << 10},
                                   {"MiB", 1ull << 20},
                                   {"GiB", 1ull << 30},
                                   {"TiB", 1ull << 40}};
  uint64_t n = 0;
  std::string_view rest;
  if (!parse_number(text, n, rest)) return std::nullopt;
  for (const auto& u : units)
    if (u.name == rest) return scaled(n, u.factor);
  return std::nullopt;
}

std::string format_bytes(uint64_t n) {
  static constexpr unit units[] = {
      {"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
  for (const auto& u : units)
    if (n >= u.factor && n % u.factor == 0) return fmt::format("{}{}", n / u.factor, u.name);
  return fmt::format("{}B", n);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  static constexpr unit units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  uint64_t n = 0;
  std::string_view rest;
  if (!parse_number(text, n, rest)) return std::nullopt;
  if (rest.empty() && n == 0) return std::chrono::milliseconds(0);
  for (const auto& u : units) {
    if (u.name != rest) continue;
    auto v = scaled(n, u.factor);
    if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return std::chrono::milliseconds(static_cast<int64_t>(*v));
  }
  return std::nullopt;
}

std::string format_duration(std::chrono::milliseconds d) {
  static constexpr unit units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
  auto n = static_cast<uint64_t>(d.count());
  for (const auto& u : units)
    if (n >= u.factor && n % u.factor == 0) return fmt::format("{}{}", n / u.factor, u.name);
  return fmt::format("{}ms", n);
}

namespace detail {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04X}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::optional<std::string> want(std::string_view what, const toml::node& n) {
  std::string_view got;
  switch (n.type()) {
    case toml::node_type::string:
      got = "a string";
      break;
    case toml::node_type::integer:
      got = "an integer";
      break;
    case toml::node_type::floating_point:
      got = "a float";
      break;
    case toml::node_type::boolean:
      got = "a boolean";
      break;
    case toml::node_type::array:
      got = "an array";
      break;
    case toml::node_type::table:
      got = "a table";
      break;
    default:
      got = "a date/time";
      break;
  }
  if (n.is_string())
    return fmt::format("expected {}, got {}", what, quote(*n.value<std::string>()));
  return fmt::format("expected {}, got {}", what, got);
}

}  // namespace detail

}  // namespace sqsrelay::config
