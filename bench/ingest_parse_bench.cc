// Per-message cost of the HTTP ingest body parser (src/sources/http_ingest/body_parser.h):
// validation (simdjson DOM), element splitting, minify, SQS checks and the batch arena.
// Items/s in the output is messages per second on one core.
//
//   build/<dir>/bench/ingest_parse_bench --benchmark_min_time=0.5
//
// `OndemandSplitOnly` is a reference point, not an alternative: simdjson's On-Demand API
// iterating the same array and taking each element's raw text, without validating the
// elements or minifying them (what a parser that skipped validation would cost).
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <string>

#include "sources/http_ingest/body_parser.h"

namespace {

using namespace sqsrelay::sources;

// A flespi-like device message of about 200 bytes.
std::string device_message(int i) {
  return "{\"ident\":\"35209308145" + std::to_string(1000 + i % 9000) +
         "\",\"timestamp\":1702366832.965264,\"position.latitude\":54.68," +
         "\"position.longitude\":25.27,\"position.speed\":" + std::to_string(i % 120) +
         ",\"engine.ignition.status\":true,\"battery.voltage\":12.8,\"din\":5}";
}

std::string array_of(int n, bool pretty) {
  std::string b = "[";
  for (int i = 0; i < n; ++i) {
    if (i) b += pretty ? ",\n  " : ",";
    b += device_message(i);
  }
  return b + "]";
}

std::string ndjson_of(int n) {
  std::string b;
  for (int i = 0; i < n; ++i) b += device_message(i) + "\n";
  return b;
}

route_options flespi_route() {
  route_options r;
  r.attributes = {{field_pointer("ident"), "ident", "String", true},
                  {field_pointer("position.speed"), "speed", "Number", false}};
  r.group_id_field = field_pointer("ident");
  return r;
}

void run(benchmark::State& state, const route_options& r, const std::string& body,
         std::string_view content_type) {
  body_parser p(64);
  size_t messages = 0;
  for (auto _ : state) {
    std::string copy = body;  // as each request brings its own body
    auto out = p.parse(r, content_type, copy);
    messages += out.batch.messages().size();
    benchmark::DoNotOptimize(out.batch.messages().data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(messages));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void Array100(benchmark::State& state) { run(state, {}, array_of(100, false), "application/json"); }
void Array100Pretty(benchmark::State& state) {
  run(state, {}, array_of(100, true), "application/json");
}
void Array100Attributes(benchmark::State& state) {
  run(state, flespi_route(), array_of(100, false), "application/json");
}
void Ndjson100(benchmark::State& state) { run(state, {}, ndjson_of(100), "application/x-ndjson"); }
void Single(benchmark::State& state) { run(state, {}, device_message(7), "application/json"); }
void SingleAttributes(benchmark::State& state) {
  run(state, flespi_route(), device_message(7), "application/json");
}

void OndemandSplitOnly(benchmark::State& state) {
  std::string body = array_of(100, false);
  simdjson::padded_string padded(body);
  simdjson::ondemand::parser parser;
  size_t messages = 0;
  for (auto _ : state) {
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc)) state.SkipWithError("parse");
    simdjson::ondemand::array arr;
    if (doc.get_array().get(arr)) state.SkipWithError("array");
    for (auto el : arr) {
      simdjson::ondemand::object obj;
      std::string_view raw;
      if (el.get_object().get(obj) || obj.raw_json().get(raw)) state.SkipWithError("element");
      benchmark::DoNotOptimize(raw.data());
      ++messages;
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(messages));
}

}  // namespace

BENCHMARK(Array100);
BENCHMARK(Array100Pretty);
BENCHMARK(Array100Attributes);
BENCHMARK(Ndjson100);
BENCHMARK(Single);
BENCHMARK(SingleAttributes);
BENCHMARK(OndemandSplitOnly);
BENCHMARK_MAIN();
