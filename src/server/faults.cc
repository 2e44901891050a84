#include "server/faults.h"

#include <charconv>
#include <random>

#include <fmt/format.h>

namespace sqsrelay::server {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool parse_rate(std::string_view key, std::string_view v, double& out, std::string& error) {
  double d = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || p != v.data() + v.size() || !(d >= 0 && d <= 1)) {
    error = fmt::format("{}={}: expected a fraction from 0 to 1", key, v);
    return false;
  }
  out = d;
  return true;
}

bool parse_duration(std::string_view key, std::string_view v, std::chrono::microseconds& out,
                    std::string& error) {
  double n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  std::string_view unit(p, static_cast<size_t>(v.data() + v.size() - p));
  double scale = unit.empty() || unit == "ms" ? 1e3 : unit == "us" ? 1 : unit == "s" ? 1e6 : -1;
  if (ec != std::errc() || scale < 0 || n < 0 || n * scale > 600e6) {
    error = fmt::format("{}={}: expected a duration like 10ms, 500us or 1s (at most 600s)", key, v);
    return false;
  }
  out = std::chrono::microseconds(static_cast<int64_t>(n * scale));
  return true;
}

std::string format_duration(std::chrono::microseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}ms", d.count() / 1000);
  return fmt::format("{}us", d.count());
}

}  // namespace

std::optional<fault_rule> parse_fault_rule(std::string_view spec, std::string& error) {
  fault_rule r;
  spec = trim(spec);
  if (spec.empty()) {
    error = "empty fault spec";
    return std::nullopt;
  }
  while (!spec.empty()) {
    auto comma = spec.find(',');
    std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) {
      error = fmt::format("'{}': expected key=value", item);
      return std::nullopt;
    }
    std::string_view key = trim(item.substr(0, eq)), v = trim(item.substr(eq + 1));
    bool ok = true;
    if (key == "queue") {
      if (v.empty()) {
        error = "queue=: expected a queue name";
        return std::nullopt;
      }
      r.queue = std::string(v);
    } else if (key == "latency") {
      ok = parse_duration(key, v, r.latency, error);
    } else if (key == "jitter") {
      ok = parse_duration(key, v, r.jitter, error);
    } else if (key == "throttle") {
      ok = parse_rate(key, v, r.throttle, error);
    } else if (key == "error5xx" || key == "5xx") {
      ok = parse_rate(key, v, r.error5xx, error);
    } else if (key == "drop") {
      ok = parse_rate(key, v, r.drop, error);
    } else if (key == "drop_after") {
      ok = parse_rate(key, v, r.drop_after, error);
    } else if (key == "partial") {
      ok = parse_rate(key, v, r.partial, error);
    } else if (key == "seed") {
      uint64_t s = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
      if (ec != std::errc() || p != v.data() + v.size()) {
        error = fmt::format("seed={}: expected an unsigned integer", v);
        return std::nullopt;
      }
      r.seed = s;
    } else {
      error = fmt::format("unknown fault key '{}' (known: queue, latency, jitter, throttle, "
                          "error5xx, drop, drop_after, partial, seed)",
                          key);
      return std::nullopt;
    }
    if (!ok) return std::nullopt;
  }
  if (r.throttle + r.error5xx + r.drop + r.drop_after > 1) {
    error = "throttle + error5xx + drop + drop_after must not exceed 1";
    return std::nullopt;
  }
  return r;
}

std::optional<std::vector<fault_rule>> parse_fault_rules(std::string_view text,
                                                          std::string& error) {
  std::vector<fault_rule> rules;
  size_t line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    std::string e;
    auto r = parse_fault_rule(line, e);
    if (!r) {
      error = fmt::format("line {}: {}", line_no, e);
      return std::nullopt;
    }
    rules.push_back(std::move(*r));
  }
  return rules;
}

std::string format_fault_rule(const fault_rule& r) {
  std::string out;
  auto add = [&](std::string item) {
    if (!out.empty()) out += ',';
    out += item;
  };
  if (!r.queue.empty()) add("queue=" + r.queue);
  if (r.latency.count()) add("latency=" + format_duration(r.latency));
  if (r.jitter.count()) add("jitter=" + format_duration(r.jitter));
  if (r.throttle) add(fmt::format("throttle={}", r.throttle));
  if (r.error5xx) add(fmt::format("error5xx={}", r.error5xx));
  if (r.drop) add(fmt::format("drop={}", r.drop));
  if (r.drop_after) add(fmt::format("drop_after={}", r.drop_after));
  if (r.partial) add(fmt::format("partial={}", r.partial));
  if (r.seed) add(fmt::format("seed={}", *r.seed));
  return out;
}

struct fault_injector::rule_set {
  std::vector<fault_rule> rules;
  std::optional<uint64_t> seed;
  uint64_t generation = 0;

  const fault_rule* match(std::string_view queue) const {
    const fault_rule* any = nullptr;
    for (const auto& r : rules) {
      if (r.queue.empty()) {
        if (!any) any = &r;
      } else if (r.queue == queue) {
        return &r;
      }
    }
    return any;
  }
};

void fault_injector::set(std::vector<fault_rule> rules) {
  auto rs = std::make_shared<rule_set>();
  for (const auto& r : rules)
    if (r.seed && !rs->seed) rs->seed = r.seed;
  rs->rules = std::move(rules);
  // Process-wide generations: the per-thread streams are shared by every injector.
  static std::atomic<uint64_t> generations{0};
  rs->generation = generations.fetch_add(1) + 1;
  generation_.store(rs->generation);
  bool any = !rs->rules.empty();
  rules_.store(std::move(rs));
  active_.store(any, std::memory_order_relaxed);
}

std::vector<fault_rule> fault_injector::rules() const {
  auto rs = rules_.load();
  return rs ? rs->rules : std::vector<fault_rule>{};
}

double fault_injector::uniform() {
  // One stream per thread, reseeded when the rules change so that `seed=N` runs repeat.
  struct stream {
    uint64_t generation = 0;
    std::mt19937_64 rng;
  };
  static std::atomic<uint64_t> next_ordinal{0};
  thread_local uint64_t ordinal = next_ordinal.fetch_add(1);
  thread_local stream s;
  uint64_t gen = generation_.load(std::memory_order_relaxed);
  if (s.generation != gen) {
    auto rs = rules_.load();
    s.generation = gen;
    s.rng.seed(rs && rs->seed ? *rs->seed + ordinal : std::random_device{}());
  }
  return std::uniform_real_distribution<double>(0.0, 1.0)(s.rng);
}

fault_decision fault_injector::decide(std::string_view queue) {
  fault_decision d;
  auto rs = rules_.load();
  const fault_rule* r = rs ? rs->match(queue) : nullptr;
  if (!r) return d;
  d.delay = r->latency;
  if (r->jitter.count())
    d.delay += std::chrono::microseconds(
        static_cast<int64_t>(uniform() * static_cast<double>(r->jitter.count() + 1)));
  if (d.delay.count()) stats_.delayed += 1;
  double x = uniform();
  if ((x -= r->throttle) < 0) {
    d.action = fault_action::throttle;
    stats_.throttled += 1;
  } else if ((x -= r->error5xx) < 0) {
    d.action = fault_action::error5xx;
    stats_.errors5xx += 1;
  } else if ((x -= r->drop) < 0) {
    d.action = fault_action::drop;
    stats_.dropped += 1;
  } else if ((x -= r->drop_after) < 0) {
    d.action = fault_action::drop_after;
    stats_.dropped_after += 1;
  }
  d.partial = r->partial;
  return d;
}

bool fault_injector::fail_entry(double rate) {
  if (rate <= 0 || uniform() >= rate) return false;
  stats_.failed_entries += 1;
  return true;
}

}  // namespace sqsrelay::server
