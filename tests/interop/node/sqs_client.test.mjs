// @aws-sdk/client-sqs v3 (AWS JSON 1.0) against a real `sqsrelay serve` process.
//
// Run through the server wrapper, which sets SQSRELAY_ENDPOINT:
//   python3 tests/interop/sqsrelay_server.py --in-memory -- node --test tests/interop/node/
// The SDK itself checks MD5OfBody / MD5OfMessageBody on send, batch send and receive and
// throws on a mismatch; it does not check attribute MD5s, so this file computes those the way
// the SQS Developer Guide describes and compares them.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
// The SDK is installed by scripts/setup.sh under tests/node, not beside this file.
const requireFromClients = createRequire(path.join(here, "..", "..", "node", "package.json"));
const sqsSdk = requireFromClients("@aws-sdk/client-sqs");
const {
  SQSClient, CreateQueueCommand, GetQueueUrlCommand, ListQueuesCommand, DeleteQueueCommand,
  GetQueueAttributesCommand, SetQueueAttributesCommand, PurgeQueueCommand, TagQueueCommand,
  UntagQueueCommand, ListQueueTagsCommand, SendMessageCommand, SendMessageBatchCommand,
  ReceiveMessageCommand, DeleteMessageCommand, DeleteMessageBatchCommand,
  ChangeMessageVisibilityCommand, ChangeMessageVisibilityBatchCommand,
  ListDeadLetterSourceQueuesCommand, QueueDoesNotExist, ReceiptHandleIsInvalid,
  BatchEntryIdsNotDistinct, EmptyBatchRequest, TooManyEntriesInBatchRequest,
  InvalidBatchEntryId, BatchRequestTooLong, InvalidMessageContents, QueueNameExists,
  InvalidAttributeName, InvalidAttributeValue, UnsupportedOperation,
  paginateListQueues,
} = sqsSdk;

const endpoint = process.env.SQSRELAY_ENDPOINT;
const account = process.env.SQSRELAY_ACCOUNT_ID ?? "000000000000";
const region = process.env.SQSRELAY_REGION ?? "us-east-1";
if (!endpoint) {
  throw new Error("SQSRELAY_ENDPOINT is not set: run through tests/interop/sqsrelay_server.py");
}

const client = new SQSClient({
  endpoint, region, maxAttempts: 1,
  credentials: { accessKeyId: "AKIDNODEINTEROP", secretAccessKey: "node-secret" },
});
const send = (cmd) => client.send(cmd);

let counter = 0;
const uniqueName = (prefix) =>
  `node-${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
const queueUrlOf = (name) => `${endpoint}/${account}/${name}`;
const arnOf = (name) => `arn:aws:sqs:${region}:${account}:${name}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const md5 = (data) => createHash("md5").update(data).digest("hex");

// MD5OfMessageAttributes per the SQS Developer Guide: for each attribute sorted by name,
// length-prefixed (uint32 BE) UTF-8 name and data type, transport byte (1 string/number,
// 2 binary), length-prefixed value.
function md5OfAttributes(attrs) {
  const parts = [];
  const lp = (buf) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    parts.push(len, buf);
  };
  for (const name of Object.keys(attrs).sort()) {
    const a = attrs[name];
    lp(Buffer.from(name, "utf8"));
    lp(Buffer.from(a.DataType, "utf8"));
    if (a.StringValue !== undefined) {
      parts.push(Buffer.from([1]));
      lp(Buffer.from(a.StringValue, "utf8"));
    } else {
      parts.push(Buffer.from([2]));
      lp(Buffer.from(a.BinaryValue));
    }
  }
  return md5(Buffer.concat(parts));
}

async function createQueue(prefix, Attributes, tags) {
  const QueueName = uniqueName(prefix);
  const { QueueUrl } = await send(new CreateQueueCommand({ QueueName, Attributes, tags }));
  return { name: QueueName, url: QueueUrl };
}

async function receiveAll(QueueUrl, count, extra = {}) {
  const got = [];
  const deadline = Date.now() + 10_000;
  while (got.length < count && Date.now() < deadline) {
    const r = await send(new ReceiveMessageCommand({
      QueueUrl, MaxNumberOfMessages: Math.min(10, count - got.length), WaitTimeSeconds: 1,
      ...extra,
    }));
    got.push(...(r.Messages ?? []));
  }
  return got;
}

// Asserts a typed SDK error: class, name, legacy code (from x-amzn-query-error), client fault.
async function rejectsWith(promise, ErrorClass, legacyCode, status = 400) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ErrorClass,
      `expected ${ErrorClass.name}, got ${err.name}: ${err.message}`);
    assert.equal(err.name, ErrorClass.name);
    assert.equal(err.$fault, "client");
    assert.equal(err.$metadata.httpStatusCode, status);
    assert.ok(err.$metadata.requestId, "x-amzn-RequestId on errors");
    if (legacyCode) assert.equal(err.Code, legacyCode);
    return true;
  });
}

// For unmodelled errors (InvalidParameterValue, MissingParameter): the legacy code.
async function rejectsWithCode(promise, legacyCode, status = 400) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.Code ?? err.name, legacyCode, `${err.name}: ${err.message}`);
    assert.equal(err.$metadata?.httpStatusCode, status);
    return true;
  });
}

after(() => client.destroy());

describe("queues", () => {
  test("create, get url, list, attributes, delete", async () => {
    const { name, url } = await createQueue("life", { VisibilityTimeout: "7" });
    assert.equal(url, queueUrlOf(name));
    const got = await send(new GetQueueUrlCommand({ QueueName: name }));
    assert.equal(got.QueueUrl, url);
    assert.ok(got.$metadata.requestId);
    const listed = await send(new ListQueuesCommand({ QueueNamePrefix: name }));
    assert.deepEqual(listed.QueueUrls, [url]);
    const all = (await send(new GetQueueAttributesCommand({
      QueueUrl: url, AttributeNames: ["All"] }))).Attributes;
    assert.equal(all.VisibilityTimeout, "7");
    assert.equal(all.MaximumMessageSize, "1048576");
    assert.equal(all.MessageRetentionPeriod, "345600");
    assert.equal(all.QueueArn, arnOf(name));
    await send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { DelaySeconds: "3" } }));
    const one = (await send(new GetQueueAttributesCommand({
      QueueUrl: url, AttributeNames: ["DelaySeconds"] }))).Attributes;
    assert.deepEqual(one, { DelaySeconds: "3" });
    await send(new DeleteQueueCommand({ QueueUrl: url }));
    await rejectsWith(send(new GetQueueUrlCommand({ QueueName: name })), QueueDoesNotExist,
      "AWS.SimpleQueueService.NonExistentQueue");
  });

  test("pagination with the SDK paginator", async () => {
    const prefix = uniqueName("pg");
    const urls = [];
    for (let i = 0; i < 5; i++) {
      urls.push((await send(new CreateQueueCommand({ QueueName: `${prefix}-${i}` }))).QueueUrl);
    }
    const seen = [];
    let pages = 0;
    for await (const page of paginateListQueues({ client, pageSize: 2 },
      { QueueNamePrefix: prefix })) {
      pages++;
      assert.ok((page.QueueUrls ?? []).length <= 2);
      seen.push(...(page.QueueUrls ?? []));
    }
    assert.ok(pages >= 3, `pages: ${pages}`);
    assert.deepEqual(seen.sort(), urls.sort());
  });

  test("typed queue errors", async () => {
    const { name, url } = await createQueue("errs", { DelaySeconds: "1" });
    await rejectsWith(send(new CreateQueueCommand({ QueueName: name,
      Attributes: { DelaySeconds: "2" } })), QueueNameExists, "QueueAlreadyExists");
    await rejectsWith(send(new GetQueueAttributesCommand({ QueueUrl: url,
      AttributeNames: ["Foobar"] })), InvalidAttributeName, "InvalidAttributeName");
    await rejectsWith(send(new SetQueueAttributesCommand({ QueueUrl: url,
      Attributes: { MessageRetentionPeriod: "59" } })), InvalidAttributeValue,
      "InvalidAttributeValue");
    await rejectsWith(send(new CreateQueueCommand({ QueueName: `${uniqueName("f")}.fifo`,
      Attributes: { FifoQueue: "true" } })), UnsupportedOperation,
      "AWS.SimpleQueueService.UnsupportedOperation");
    await rejectsWith(send(new SendMessageCommand({ QueueUrl: queueUrlOf(uniqueName("gone")),
      MessageBody: "x" })), QueueDoesNotExist, "AWS.SimpleQueueService.NonExistentQueue");
  });

  test("tags", async () => {
    const { url } = await createQueue("tags", undefined, { a: "1" });
    await send(new TagQueueCommand({ QueueUrl: url, Tags: { b: "2", c: "" } }));
    assert.deepEqual((await send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags,
      { a: "1", b: "2", c: "" });
    await send(new UntagQueueCommand({ QueueUrl: url, TagKeys: ["a", "c", "missing"] }));
    assert.deepEqual((await send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags, { b: "2" });
  });

  test("purge and dead-letter source queues", async () => {
    const dlq = await createQueue("dlq");
    const policy = JSON.stringify({ deadLetterTargetArn: arnOf(dlq.name), maxReceiveCount: 2 });
    const src = await createQueue("src", { RedrivePolicy: policy });
    const sources = await send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq.url }));
    assert.deepEqual(sources.queueUrls, [src.url]);
    const sent = await send(new SendMessageCommand({ QueueUrl: src.url, MessageBody: "poison" }));
    for (let i = 0; i < 2; i++) {
      const r = await send(new ReceiveMessageCommand({ QueueUrl: src.url, VisibilityTimeout: 0,
        WaitTimeSeconds: 1 }));
      assert.equal(r.Messages?.length, 1, `delivery ${i + 1}`);
    }
    const third = await send(new ReceiveMessageCommand({ QueueUrl: src.url, WaitTimeSeconds: 1 }));
    assert.equal(third.Messages?.length ?? 0, 0);
    const moved = await send(new ReceiveMessageCommand({ QueueUrl: dlq.url, WaitTimeSeconds: 2 }));
    assert.deepEqual(moved.Messages?.map((m) => m.MessageId), [sent.MessageId]);
    await send(new SendMessageCommand({ QueueUrl: dlq.url, MessageBody: "more" }));
    await send(new PurgeQueueCommand({ QueueUrl: dlq.url }));
    const attrs = (await send(new GetQueueAttributesCommand({ QueueUrl: dlq.url,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }))).Attributes;
    assert.deepEqual(attrs, { ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesNotVisible: "0" });
  });
});

describe("messages", () => {
  let q;
  before(async () => { q = await createQueue("msg"); });

  test("all attribute types; the SDK verifies body MD5s, we verify attribute MD5s", async () => {
    const attrs = {
      str: { DataType: "String", StringValue: "grüße 日本" },
      num: { DataType: "Number", StringValue: "-1.5E+3" },
      flt: { DataType: "Number.float", StringValue: "3.25" },
      lbl: { DataType: "String.label", StringValue: "custom" },
      bin: { DataType: "Binary", BinaryValue: new Uint8Array(randomBytes(64)) },
      jpg: { DataType: "Binary.jpeg", BinaryValue: new Uint8Array([0xff, 0xd8, 0xff, 0]) },
    };
    const body = "body with \u00e9 and \u{1F600} and <xml/> & \"quotes\"";
    const sent = await send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body,
      MessageAttributes: attrs }));
    assert.equal(sent.MD5OfMessageBody, md5(Buffer.from(body, "utf8")));
    assert.equal(sent.MD5OfMessageAttributes, md5OfAttributes(attrs));
    const [m] = await receiveAll(q.url, 1, { MessageAttributeNames: ["All"],
      MessageSystemAttributeNames: ["All"] });
    assert.equal(m.Body, body);
    assert.equal(m.MessageId, sent.MessageId);
    assert.equal(m.MD5OfMessageAttributes, md5OfAttributes(attrs));
    assert.deepEqual(Object.keys(m.MessageAttributes).sort(), Object.keys(attrs).sort());
    for (const [k, v] of Object.entries(attrs)) {
      assert.equal(m.MessageAttributes[k].DataType, v.DataType);
      if (v.BinaryValue) {
        assert.deepEqual(Buffer.from(m.MessageAttributes[k].BinaryValue),
          Buffer.from(v.BinaryValue));
      } else {
        assert.equal(m.MessageAttributes[k].StringValue, v.StringValue);
      }
    }
    assert.equal(m.Attributes.ApproximateReceiveCount, "1");
    assert.match(m.Attributes.SentTimestamp, /^\d+$/);
    await send(new DeleteMessageCommand({ QueueUrl: q.url, ReceiptHandle: m.ReceiptHandle }));
  });

  test("visibility changes and typed message errors", async () => {
    await send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "vis" }));
    const [m] = await receiveAll(q.url, 1, { VisibilityTimeout: 1 });
    const again = await send(new ReceiveMessageCommand({ QueueUrl: q.url }));
    assert.equal(again.Messages?.length ?? 0, 0, "in flight");
    await sleep(1500);
    // Not in flight any more: SQS answers 200 and changes nothing.
    await send(new ChangeMessageVisibilityCommand({ QueueUrl: q.url,
      ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 30 }));
    const [m2] = await receiveAll(q.url, 1);
    assert.equal(m2.MessageId, m.MessageId);
    assert.notEqual(m2.ReceiptHandle, m.ReceiptHandle);
    await send(new ChangeMessageVisibilityCommand({ QueueUrl: q.url,
      ReceiptHandle: m2.ReceiptHandle, VisibilityTimeout: 0 }));
    const [m3] = await receiveAll(q.url, 1);
    assert.equal(m3.MessageId, m.MessageId);
    await send(new DeleteMessageCommand({ QueueUrl: q.url, ReceiptHandle: m3.ReceiptHandle }));
    await rejectsWith(send(new DeleteMessageCommand({ QueueUrl: q.url,
      ReceiptHandle: "garbage" })), ReceiptHandleIsInvalid, "ReceiptHandleIsInvalid");
    await rejectsWith(send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "bad \uffff" })),
      InvalidMessageContents, "InvalidMessageContents");
    await rejectsWithCode(send(new ReceiveMessageCommand({ QueueUrl: q.url,
      MaxNumberOfMessages: 11 })), "InvalidParameterValue");
    await rejectsWithCode(send(new SendMessageCommand({ QueueUrl: q.url,
      MessageBody: "x".repeat(1048577) })), "InvalidParameterValue");
  });

  test("a 1 MiB message round-trips", async () => {
    const { url } = await createQueue("big");
    const body = "z".repeat(1048576);
    await send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    const [m] = await receiveAll(url, 1);
    assert.equal(m.Body.length, 1048576);
  });

  test("long polling returns as soon as a message arrives", async () => {
    const { url } = await createQueue("lp");
    const t0 = Date.now();
    const sent = sleep(500).then(() =>
      send(new SendMessageCommand({ QueueUrl: url, MessageBody: "wake" })));
    const r = await send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
    const elapsed = Date.now() - t0;
    await sent;
    assert.deepEqual(r.Messages?.map((m) => m.Body), ["wake"]);
    assert.ok(elapsed < 2000, `returned after ${elapsed} ms`);
  });
});

describe("batches", () => {
  test("send, receive, change visibility, delete", async () => {
    const { url } = await createQueue("batch");
    const attrs = { n: { DataType: "Number", StringValue: "1" } };
    const Entries = Array.from({ length: 10 }, (_, i) => ({
      Id: `e${i}`, MessageBody: `m${i}`, ...(i === 0 ? { MessageAttributes: attrs } : {}),
    }));
    const sent = await send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
    assert.equal(sent.Successful.length, 10);
    assert.equal(sent.Failed?.length ?? 0, 0);
    const e0 = sent.Successful.find((e) => e.Id === "e0");
    assert.equal(e0.MD5OfMessageAttributes, md5OfAttributes(attrs));
    const got = await receiveAll(url, 10);
    assert.deepEqual(got.map((m) => m.Body).sort(), Entries.map((e) => e.MessageBody).sort());
    const cmv = await send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: url,
      Entries: got.slice(0, 3).map((m, i) => ({ Id: `c${i}`, ReceiptHandle: m.ReceiptHandle,
        VisibilityTimeout: 0 })) }));
    assert.equal(cmv.Successful.length, 3);
    const again = await receiveAll(url, 3);
    assert.equal(again.length, 3);
    const all = [...got.slice(3), ...again];
    const del = await send(new DeleteMessageBatchCommand({ QueueUrl: url,
      Entries: all.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })) }));
    assert.equal(del.Successful.length, 10);
  });

  test("partial failure: one invalid entry fails, the others succeed", async () => {
    const { url } = await createQueue("partial");
    const Entries = [
      { Id: "ok1", MessageBody: "fine 1" },
      { Id: "bad", MessageBody: "nul \u0000 inside" },
      { Id: "ok2", MessageBody: "fine 2", MessageAttributes: {
        s: { DataType: "String", StringValue: "v" } } },
    ];
    const r = await send(new SendMessageBatchCommand({ QueueUrl: url, Entries }));
    assert.deepEqual(r.Successful.map((e) => e.Id).sort(), ["ok1", "ok2"]);
    assert.equal(r.Failed.length, 1);
    assert.equal(r.Failed[0].Id, "bad");
    assert.equal(r.Failed[0].SenderFault, true);
    assert.equal(r.Failed[0].Code, "InvalidMessageContents");
    const del = await send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [
      { Id: "x", ReceiptHandle: "garbage" }] }));
    assert.equal(del.Successful?.length ?? 0, 0);
    assert.equal(del.Failed[0].Code, "ReceiptHandleIsInvalid");
    assert.equal(del.Failed[0].SenderFault, true);
  });

  test("typed batch errors", async () => {
    const { url } = await createQueue("batcherr");
    await rejectsWith(send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [] })),
      EmptyBatchRequest, "AWS.SimpleQueueService.EmptyBatchRequest");
    await rejectsWith(send(new SendMessageBatchCommand({ QueueUrl: url,
      Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `i${i}`, MessageBody: "b" })) })),
      TooManyEntriesInBatchRequest, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest");
    await rejectsWith(send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [
      { Id: "same", MessageBody: "a" }, { Id: "same", MessageBody: "b" }] })),
      BatchEntryIdsNotDistinct, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct");
    await rejectsWith(send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: [
      { Id: "bad:id", ReceiptHandle: "h" }] })),
      InvalidBatchEntryId, "AWS.SimpleQueueService.InvalidBatchEntryId");
    await rejectsWith(send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [
      { Id: "a", MessageBody: "a".repeat(600_000) }, { Id: "b", MessageBody: "b".repeat(600_000) },
    ] })), BatchRequestTooLong, "AWS.SimpleQueueService.BatchRequestTooLong");
  });
});
