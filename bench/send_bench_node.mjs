// Node side of bench/send_bench.py: sends COUNT messages of SIZE bytes with
//   sdk       @aws-sdk/client-sqs SendMessageBatch of 10, CONCURRENCY calls in flight
//   producer  sqs-producer (bbc) Producer.send of 10-message arrays, CONCURRENCY in flight
// and stops at COUNT messages or BUDGET seconds. Prints one JSON line.
// usage: node send_bench_node.mjs MODE ENDPOINT QUEUE_URL COUNT SIZE CONCURRENCY BUDGET_S
// The clients live in tests/node/node_modules (scripts/setup.sh installs them there).
import { createRequire } from "node:module";
const require = createRequire(new URL("../tests/node/package.json", import.meta.url));
const { SQSClient, SendMessageBatchCommand } = require("@aws-sdk/client-sqs");
const { Producer } = require("sqs-producer");

const [mode, endpoint, queueUrl, countS, sizeS, concS, budgetS] = process.argv.slice(2);
const count = Number(countS), size = Number(sizeS), conc = Number(concS);
const budgetMs = Number(budgetS) * 1000;
const sqs = new SQSClient({ endpoint, region: "us-east-1",
  credentials: { accessKeyId: "bench", secretAccessKey: "bench" }, maxAttempts: 3 });
const body = (i) => (String(i).padStart(10, "0") + "x".repeat(size)).slice(0, size);

let next = 0, sent = 0, calls = 0, failed = 0;
const start = Date.now();
const producer = mode === "producer" ? Producer.create({ queueUrl, sqs, batchSize: 10 }) : null;

async function worker() {
  while (next < count && Date.now() - start < budgetMs) {
    const first = next;
    next += 10;
    const n = Math.min(10, count - first);
    if (producer) {
      const msgs = [];
      for (let k = 0; k < n; k++) msgs.push({ id: String(k), body: body(first + k) });
      await producer.send(msgs);
    } else {
      const Entries = [];
      for (let k = 0; k < n; k++) Entries.push({ Id: String(k), MessageBody: body(first + k) });
      const r = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
      failed += (r.Failed || []).length;
    }
    calls += 1;
    sent += n;
  }
}
await Promise.all(Array.from({ length: conc }, worker));
const seconds = (Date.now() - start) / 1000;
console.log(JSON.stringify({ messages: sent, seconds, api_calls: calls, failed,
  msgs_per_s: sent / seconds }));
