// One declaration per configuration option: key, kind, description, bounds, and the member
// of the settings struct it fills. The struct's default member initializer is the default
// (read back from a default-constructed struct for help and docs), so every option is
// declared exactly once and drives parsing, validation, `--help` and docs/configuration.md.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sqsrelay::config {

// Where a problem is: the file, the line and column of the offending key or value, and the
// dotted key path (sources.http[0].routes[1].queue).
struct config_error {
  std::string file;
  uint32_t line = 0, column = 0;
  std::string key;
  std::string message;
  // "relay.toml:12:5: sources.http[0].listen: message"
  std::string to_string() const;
};

enum class value_kind : uint8_t { string, boolean, integer, bytes, duration, string_list, choice };
std::string_view kind_name(value_kind k);

// Text forms shared by the parser and the docs.
std::optional<uint64_t> parse_bytes(std::string_view text);  // "64MiB", "10GB", "512"
std::string format_bytes(uint64_t n);                        // 67108864 -> "64MiB"
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);  // "5ms", "2s"
std::string format_duration(std::chrono::milliseconds d);

template <class S>
struct option {
  std::string_view key;
  value_kind kind;
  std::string_view help;
  // Sets the member from a TOML value; returns the problem (wrong type, out of range).
  std::function<std::optional<std::string>(S&, const toml::node&)> set;
  // The member's value as it would be written in TOML (docs and --help show the default).
  std::function<std::string(const S&)> show;
  std::string choices;  // for value_kind::choice: "a | b | c"
};

template <class S>
using option_list = std::vector<option<S>>;

namespace detail {
std::string quote(std::string_view s);
std::optional<std::string> want(std::string_view what, const toml::node& n);
}  // namespace detail

template <class S>
option<S> string_option(std::string_view key, std::string S::*m, std::string_view help) {
  return {key,
          value_kind::string,
          help,
          [m](S& s, const toml::node& n) -> std::optional<std::string> {
            auto v = n.value<std::string>();
            if (!n.is_string() || !v) return detail::want("a string", n);
            s.*m = *v;
            return std::nullopt;
          },
          [m](const S& s) { return detail::quote(s.*m); },
          {}};
}

template <class S>
option<S> bool_option(std::string_view key, bool S::*m, std::string_view help) {
  return {key,
          value_kind::boolean,
          help,
          [m](S& s, const toml::node& n) -> std::optional<std::string> {
            if (!n.is_boolean()) return detail::want("true or false", n);
            s.*m = *n.value<bool>();
            return std::nullopt;
          },
          [m](const S& s) { return std::string(s.*m ? "true" : "false"); },
          {}};
}

template <class S, class I>
option<S> int_option(std::string_view key, I S::*m, int64_t min, int64_t max,
                     std::string_view help) {
  return {key,
          value_kind::integer,
          help,
          [m, min, max](S& s, const toml::node& n) -> std::optional<std::string> {
            if (!n.is_integer()) return detail::want("an integer", n);
            int64_t v = *n.value<int64_t>();
            if (v < min || v > max)
              return "must be from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", not " + std::to_string(v);
            s.*m = static_cast<I>(v);
            return std::nullopt;
          },
          [m](const S& s) { return std::to_string(s.*m); },
          {}};
}

template <class S, class I>
option<S> bytes_option(std::string_view key, I S::*m, uint64_t min, uint64_t max,
                       std::string_view help) {
  return {key,
          value_kind::bytes,
          help,
          [m, min, max](S& s, const toml::node& n) -> std::optional<std::string> {
            std::optional<uint64_t> v;
            if (n.is_integer() && *n.value<int64_t>() >= 0)
              v = static_cast<uint64_t>(*n.value<int64_t>());
            else if (n.is_string())
              v = parse_bytes(*n.value<std::string>());
            if (!v) return detail::want("a size (bytes, or a string like \"64MiB\")", n);
            if (*v < min || *v > max)
              return "must be from " + format_bytes(min) + " to " + format_bytes(max);
            s.*m = static_cast<I>(*v);
            return std::nullopt;
          },
          [m](const S& s) { return detail::quote(format_bytes(static_cast<uint64_t>(s.*m))); },
          {}};
}

template <class S, class Rep, class Period>
option<S> duration_option(std::string_view key, std::chrono::duration<Rep, Period> S::*m,
                          std::chrono::milliseconds min, std::chrono::milliseconds max,
                          std::string_view help) {
  using D = std::chrono::duration<Rep, Period>;
  return {key,
          value_kind::duration,
          help,
          [m, min, max](S& s, const toml::node& n) -> std::optional<std::string> {
            std::optional<std::chrono::milliseconds> v;
            if (n.is_string()) v = parse_duration(*n.value<std::string>());
            if (!v) return detail::want("a duration string like \"5ms\", \"2s\" or \"1m\"", n);
            if (*v < min || *v > max)
              return "must be from " + format_duration(min) + " to " + format_duration(max);
            if (std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::duration_cast<D>(*v)) != *v)
              return "must be a whole multiple of " +
                     format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(D(1)));
            s.*m = std::chrono::duration_cast<D>(*v);
            return std::nullopt;
          },
          [m](const S& s) {
            return detail::quote(
                format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(s.*m)));
          },
          {}};
}

template <class S>
option<S> list_option(std::string_view key, std::vector<std::string> S::*m, std::string_view help) {
  return {key,
          value_kind::string_list,
          help,
          [m](S& s, const toml::node& n) -> std::optional<std::string> {
            const auto* arr = n.as_array();
            if (!arr) return detail::want("an array of strings", n);
            std::vector<std::string> out;
            for (const auto& item : *arr) {
              if (!item.is_string()) return detail::want("an array of strings", n);
              out.push_back(*item.value<std::string>());
            }
            s.*m = std::move(out);
            return std::nullopt;
          },
          [m](const S& s) {
            std::string r = "[";
            for (size_t i = 0; i < (s.*m).size(); ++i)
              r += (i ? ", " : "") + detail::quote((s.*m)[i]);
            return r + "]";
          },
          {}};
}

template <class S, class E>
option<S> choice_option(std::string_view key, E S::*m,
                        std::vector<std::pair<std::string_view, E>> choices,
                        std::string_view help) {
  std::string names;
  for (const auto& c : choices) names += (names.empty() ? "" : " | ") + std::string(c.first);
  return {key,
          value_kind::choice,
          help,
          [m, choices, names](S& s, const toml::node& n) -> std::optional<std::string> {
            if (n.is_string()) {
              std::string v = *n.value<std::string>();
              for (const auto& c : choices)
                if (c.first == v) {
                  s.*m = c.second;
                  return std::nullopt;
                }
            }
            return detail::want("one of " + names, n);
          },
          [m, choices](const S& s) {
            for (const auto& c : choices)
              if (c.second == s.*m) return detail::quote(c.first);
            return std::string("?");
          },
          names};
}

}  // namespace sqsrelay::config
