// The background batching producer in a few lines: what the Spark workers in the design notes
// wrote by hand (a thread that batches by 10, flushes after a while, and handles failures).
//
//   sqsrelay serve --in-memory &                      # or point it at Amazon SQS:
//   producer_example [QUEUE] [COUNT] [ENDPOINT_URL]   # ENDPOINT_URL=https://sqs.eu-west-1.amazonaws.com
//
// The queue must exist (`aws sqs create-queue` or `sqsrelay queue create`).
#include <sqsrelay/producer.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string queue = argc > 1 ? argv[1] : "example";
  int count = argc > 2 ? std::atoi(argv[2]) : 1000;

  sqsrelay::producer_options opts;
  if (argc > 3) opts.endpoint_url = argv[3];  // default: the embedded server on :9324
  opts.dead_letter_file = "producer_example.dead.ndjson";  // what SQS can never accept

  try {
    sqsrelay::producer producer(opts);

    // Fire and forget with a callback: runs on the producer's thread, once per message.
    for (int i = 0; i < count; ++i) {
      sqsrelay::message m;
      m.body = "{\"event\":" + std::to_string(i) + "}";
      m.attributes.push_back({"source", "String", "producer_example"});
      producer.send(queue, std::move(m), [](const sqsrelay::send_result& r) {
        if (!r.ok()) std::fprintf(stderr, "not delivered: %s %s\n", r.reason.c_str(), r.code.c_str());
      });
    }

    // Or wait for one message's outcome with a future.
    auto f = producer.send(queue, "the last one");
    sqsrelay::send_result last = f.get();
    std::printf("last message: %s, id %s, %u attempt(s)\n", last.ok() ? "delivered" : last.reason.c_str(),
                last.message_id.c_str(), last.attempts);

    // A body SQS would refuse (U+0001 is outside its character set): dead-lettered, not lost.
    auto bad = producer.send(queue, std::string("bad\x01")).get();
    std::printf("invalid message: %s (%s)\n", bad.reason.c_str(), bad.code.c_str());

    producer.flush();
    auto s = producer.stats();
    std::printf("%llu delivered, %llu dead-lettered in %llu SendMessageBatch calls\n",
                static_cast<unsigned long long>(s.delivered),
                static_cast<unsigned long long>(s.dead_lettered),
                static_cast<unsigned long long>(s.api_calls));
    return s.delivered == static_cast<uint64_t>(count) + 1 ? 0 : 1;
  } catch (const std::exception& e) {  // only the constructor throws (bad configuration)
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
