// The sender's counters: a plain snapshot struct (the app renders it as Prometheus text).
#pragma once

#include <cstdint>

namespace sqsrelay::pipeline {

struct sender_counters {
  uint64_t accepted = 0;        // messages taken by submit
  uint64_t delivered = 0;       // messages SQS answered Successful for
  uint64_t retried = 0;         // entry re-sends (one message retried twice counts 2)
  uint64_t dead_lettered = 0;   // messages ended as dead_lettered
  uint64_t abandoned = 0;       // messages ended as abandoned (stop deadline passed)
  uint64_t api_calls = 0;       // SendMessageBatch requests sent
  uint64_t entries_sent = 0;    // entries in those requests (entries per call = / api_calls)
  uint64_t billing_units = 0;   // 64 KiB payload chunks, at least 1 per request
  uint64_t payload_bytes = 0;   // message bytes (SQS accounting) in those requests
  uint64_t request_errors = 0;  // whole-request failures (transport, timeout, 5xx, 4xx)
  uint64_t throttled = 0;       // throttling answers (request level or entry level)
  uint64_t entry_failures = 0;  // Failed[] entries, retryable or not
  uint64_t missing_entries = 0; // entries absent from both Successful and Failed (retried)
  uint64_t unknown_entries = 0; // ids in a reply that we did not send, or answered twice
  uint64_t limit_lookups = 0;   // MaximumMessageSize reads (GetQueueAttributes)
  uint64_t limit_lookup_errors = 0;
  uint64_t dead_letter_write_errors = 0;  // dead-letter file writes that failed
  uint64_t missing_queue_retries = 0;     // QueueDoesNotExist answers retried (grace period)
  uint64_t max_backoff_us = 0;  // the longest retry wait drawn so far (bounded by the cap)
  uint64_t in_flight = 0;       // gauge: requests in flight
  uint64_t window = 0;          // gauge: requests allowed in flight
  uint64_t max_window = 0;      // the largest window reached
  uint64_t pending = 0;         // gauge: messages accepted and not yet completed
  uint64_t pending_bytes = 0;   // gauge: their bytes
};

}  // namespace sqsrelay::pipeline
