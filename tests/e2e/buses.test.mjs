// Queue and bus destinations: events published to Amazon SQS (standard and FIFO) and Amazon
// EventBridge stand-ins that verify SigV4 as AWS does, to a Kafka REST proxy (Confluent v3 with
// basic or bearer auth, and v2), and to Pub/Sub with a service account's tokens from Google's
// token endpoint stand-in (one token for many events, renewed once the bus refuses it). Each event arrives once, with the Standard
// Webhooks signature a receiver verifies with the official `standardwebhooks` package over the
// message it got; filters and transforms apply as for https destinations; a FIFO queue gets a
// group and dedupes a retry it already took; a throttled EventBridge entry is tried again; a key
// the bus refuses is dead-lettered with the bus's code only; the event log shows every attempt;
// the bus credentials never come back. An ordered FIFO queue and an ordered Pub/Sub topic get a
// source's events by their ordering key: one group (or orderingKey) per key, each key's events in
// the order sent though the bus refused one of them once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { startGateway, assertError, planted, until } from "../harness.mjs";
import { startAws, startKafka, startPubsub } from "../mocks/buses.mjs";
import { startGoogle } from "../mocks/google.mjs";
import { sourceSecrets, sourceDoc, sample, eventId } from "../samples.mjs";
import { sign } from "../signers.mjs";

const T = "buses";
const whsec = () => "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
const KEY_ID = "AKIA" + randomBytes(8).toString("hex").toUpperCase();
const AWS_SECRET = randomBytes(30).toString("base64");
const WRONG_SECRET = randomBytes(30).toString("base64");
const secrets = { queue: whsec(), fifo: whsec(), bus: whsec(), wrong: whsec(), kbasic: whsec(), kbearer: whsec(), kv2: whsec(), kwrong: whsec(), topic: whsec(), ofifo: whsec(), otopic: whsec() };
const KAFKA_PASSWORD = "kafka-pw-" + randomBytes(12).toString("hex");
const KAFKA_TOKEN = "kafka-token-" + randomBytes(12).toString("hex");
for (const s of [...Object.values(secrets), ...Object.values(S), AWS_SECRET, WRONG_SECRET, KAFKA_PASSWORD, KAFKA_TOKEN]) planted.add(s);
let gw, aws, kafka, google, pubsub, account;
const urls = {};

const awsBlock = (secret = AWS_SECRET) => ({ region: "us-east-1", access_key_id: KEY_ID, secret_access_key: secret });

before(async () => {
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  aws = await startAws({ keys: { [KEY_ID]: AWS_SECRET } });
  urls.queue = aws.queue("orders");
  urls.fifo = aws.queue("orders.fifo");
  aws.bus("orders-bus");
  kafka = await startKafka({ users: { svc: KAFKA_PASSWORD }, tokens: [KAFKA_TOKEN] });
  urls.kafka = kafka.topic("orders");
  google = await startGoogle();
  pubsub = await startPubsub({ google });
  account = google.serviceAccount("acme-prod");
  planted.add(account.private_key.split("\n")[1]);
  urls.topic = pubsub.topic("acme-prod", "orders");
  urls.ofifo = aws.queue("keyed.fifo");
  urls.otopic = pubsub.topic("acme-prod", "keyed");
  await gw.tenant(T);
  const put = async (path, doc) => {
    const r = await gw.admin("PUT", `${T}/${path}`, doc);
    assert.equal(r.status, 201, `${path}: ${r.text}`);
  };
  await put("destinations/queue", { kind: "sqs", url: urls.queue, secret: secrets.queue, aws: awsBlock(), filter: { types: ["invoice.*"] } });
  await put("destinations/fifo", { kind: "sqs", url: urls.fifo, secret: secrets.fifo, aws: awsBlock() });
  await put("destinations/bus", {
    kind: "eventbridge", url: `${aws.url}/`, secret: secrets.bus, aws: awsBlock(),
    eventbridge: { event_bus: "orders-bus", source: "acme.orders" },
    transform: { field_mappings: { kind: "type", invoice: "data.invoice" }, transforms: { kind: ["uppercase"] } },
  });
  await put("destinations/wrong", { kind: "sqs", url: urls.queue, secret: secrets.wrong, aws: awsBlock(WRONG_SECRET), max_attempts: 5 });
  await put("destinations/kbasic", { kind: "kafka", url: urls.kafka.v3, secret: secrets.kbasic, kafka: { api: "v3", auth: { username: "svc", password: KAFKA_PASSWORD } } });
  await put("destinations/kbearer", { kind: "kafka", url: urls.kafka.v3, secret: secrets.kbearer, kafka: { auth: { token: KAFKA_TOKEN } } });
  await put("destinations/kv2", { kind: "kafka", url: urls.kafka.v2, secret: secrets.kv2, kafka: { api: "v2", auth: { token: KAFKA_TOKEN } } });
  await put("destinations/kwrong", { kind: "kafka", url: urls.kafka.v3, secret: secrets.kwrong, kafka: { auth: { username: "svc", password: "not-it" } } });
  await put("destinations/topic", { kind: "pubsub", url: urls.topic, secret: secrets.topic, google: { service_account: account } });
  await put("destinations/ofifo", { kind: "sqs", url: urls.ofifo, secret: secrets.ofifo, aws: awsBlock(), ordered: true });
  await put("destinations/otopic", { kind: "pubsub", url: urls.otopic, secret: secrets.otopic, google: { service_account: account }, ordered: true });
  await put("sources/keyed", { ...sourceDoc(T, "standard", S.standard), ordering_key: "data.data.order", destinations: ["ofifo", "otopic"] });
  await put("sources/kafka", { ...sourceDoc(T, "standard", S.standard), destinations: ["kbasic", "kbearer", "kv2", "kwrong"] });
  await put("sources/pubsub", { ...sourceDoc(T, "standard", S.standard), destinations: ["topic"] });
  await put("sources/orders", { ...sourceDoc(T, "standard", S.standard), destinations: ["queue", "fifo", "bus"] });
  await put("sources/fifo-only", { ...sourceDoc(T, "standard", S.standard), destinations: ["fifo"] });
  await put("sources/bus-only", { ...sourceDoc(T, "standard", S.standard), destinations: ["bus"] });
  await put("sources/refused", { ...sourceDoc(T, "standard", S.standard), destinations: ["wrong"] });
});
after(async () => {
  await gw?.stop();
  await aws?.close();
  await kafka?.close();
  await pubsub?.close();
  await google?.close();
});

const post = (source, s) => gw.request("POST", `/v1/webhooks/${T}/${source}`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });
const messages = (queue, id) => aws.queues.get(queue).messages.filter((m) => m.attributes["webhook-id"] === id);
const busEvents = (id) => aws.buses.get("orders-bus").filter((e) => e.detail["webhook-id"] === id);

/** A standard sample of another type. */
function ticket() {
  const id = `msg_${randomBytes(6).toString("hex")}`;
  const body = JSON.stringify({ type: "ticket.created", data: { ticket: id } });
  return { body, headers: sign.standard(S.standard, body, { id }), pid: id };
}

/** Polls the event log for `id` until `ready(detail)` holds. */
async function logged(id, ready, ms = 20_000) {
  let last;
  await until(async () => {
    last = await gw.admin("GET", `${T}/events/${id}`);
    return last.status === 200 && ready(last.body);
  }, ms, `event ${id} in the log`).catch(() => assert.fail(`event ${id} not logged as expected: ${last?.text}`));
  return last.body;
}

test("each event is one SQS message (FIFO: grouped by source) whose attributes verify with standardwebhooks, filtered and logged", async () => {
  const invoice = sample(T, S, "standard");
  const other = ticket();
  for (const s of [invoice, other]) assert.equal((await post("orders", s)).status, 200);
  const [inv, tk] = [eventId(T, "orders", invoice.pid), eventId(T, "orders", other.pid)];
  await until(() => messages("orders", `${inv}.queue`).length && messages("orders.fifo", `${inv}.fifo`).length && messages("orders.fifo", `${tk}.fifo`).length, 20_000, "the SQS messages");
  // Once the log says delivered, nothing is sent again: the counts below are final.
  const e = await logged(inv, (d) => d.status === "delivered" && d.deliveries.length === 3);
  await logged(tk, (d) => d.status === "delivered");
  for (const [queue, id, secret] of [["orders", `${inv}.queue`, secrets.queue], ["orders.fifo", `${inv}.fifo`, secrets.fifo], ["orders.fifo", `${tk}.fifo`, secrets.fifo]]) {
    const got = messages(queue, id);
    assert.equal(got.length, 1, `${id} arrived once`);
    const [m] = got;
    const verified = new Webhook(secret).verify(m.body, m.attributes);
    assert.equal(verified.id, id.split(".")[0], "the body is the event's envelope");
    assert.equal(m.attributes["event-type"], verified.type);
    assert.throws(() => new Webhook(secret).verify(m.body.replace(`"type"`, `"typo"`), m.attributes), /signature/i);
    if (queue.endsWith(".fifo")) assert.deepEqual([m.groupId, m.deduplicationId], ["orders", id], "grouped by source, deduped by delivery");
    else assert.equal(m.groupId, undefined);
  }
  assert.equal(messages("orders", `${tk}.queue`).length, 0, "the standard queue's filter takes invoices only");
  const queue = e.attempts.filter((a) => a.destination === "queue");
  assert.deepEqual(queue.map((a) => [a.status, a.state]), [[200, "delivered"]]);
  assert.ok(aws.seen.signed >= 3);
});

test("a FIFO queue drops a retry of a message it already took: the event is in the queue once", async () => {
  aws.plan.sqs.push("accepted-500");
  const s = sample(T, S, "standard");
  assert.equal((await post("fifo-only", s)).status, 200);
  const id = `${eventId(T, "fifo-only", s.pid)}.fifo`;
  const before = aws.seen.deduplicated;
  await until(() => aws.seen.deduplicated > before, 20_000, "the retry");
  const e = await logged(id.split(".")[0], (d) => d.status === "delivered");
  assert.deepEqual(e.attempts.map((a) => [a.status, a.state]), [[500, "retrying"], [200, "delivered"]]);
  assert.equal(messages("orders.fifo", id).length, 1, "once, though sent twice");
});

test("EventBridge: Detail carries the signed body a receiver verifies after EventBridge re-serialized it; a throttled entry is tried again", async () => {
  aws.plan.events.push("throttle");
  const s = sample(T, S, "standard");
  assert.equal((await post("bus-only", s)).status, 200);
  const event = eventId(T, "bus-only", s.pid);
  const id = `${event}.bus`;
  const e = await logged(event, (x) => x.status === "delivered");
  const got = busEvents(id);
  assert.equal(got.length, 1, "put once");
  const [ev] = got;
  assert.equal(ev["detail-type"], "invoice.paid");
  assert.equal(ev.source, "acme.orders");
  const d = ev.detail;
  const verified = new Webhook(secrets.bus).verify(d.body, { "webhook-id": d["webhook-id"], "webhook-timestamp": d["webhook-timestamp"], "webhook-signature": d["webhook-signature"] });
  assert.equal(verified.id, event);
  assert.deepEqual(verified.data, { kind: "INVOICE.PAID", invoice: "in_1" }, "the destination's transform applied");
  assert.equal(d["event-type"], "invoice.paid");
  assert.deepEqual(e.attempts.map((a) => [a.status, a.state, a.error]), [[200, "retrying", "events failed the entry (throttlingexception)"], [200, "delivered", null]]);
  assert.equal(aws.seen.throttled, 1);
});

test("a key the queue refuses is dead-lettered at once with AWS's code, quoting nothing else", async () => {
  const refusedBefore = aws.seen.refused.InvalidSignatureException ?? 0;
  const s = sample(T, S, "standard");
  assert.equal((await post("refused", s)).status, 200);
  const id = `${eventId(T, "refused", s.pid)}.wrong`;
  let letter;
  await until(async () => {
    letter = (await gw.admin("GET", `${T}/dead-letters`)).body.data.find((l) => l.id === id);
    return letter;
  }, 20_000, "the dead letter");
  assert.equal(aws.seen.refused.InvalidSignatureException, refusedBefore + 1, "refused by the stand-in, once: not retried");
  assert.match(letter.last_error, /sqs answered 403 \(invalidsignatureexception\)/);
  assert.doesNotMatch(letter.last_error, /calculated|Secret Access Key/);
  assert.equal(messages("orders", id).length, 0);
});

test("bus credentials are write-only and bad bus configurations are refused with the field", async () => {
  const shown = (await gw.admin("GET", `${T}/destinations/bus`)).body;
  assert.equal(shown.kind, "eventbridge");
  assert.deepEqual(shown.aws, { region: "us-east-1", access_key_id: KEY_ID, secret_access_key: { set: true } });
  assert.ok(!JSON.stringify(shown).includes(AWS_SECRET));
  // Saved again with the secret kept.
  const again = await gw.admin("PUT", `${T}/destinations/bus`, shown);
  assert.equal(again.status, 200, again.text);
  // Kept credentials do not follow the destination to another origin: they are sent again.
  const moved = await gw.admin("PUT", `${T}/destinations/bus`, { ...shown, url: "https://collector.example/" });
  assertError(assert, moved, 422, "validation_error");
  assert.match(moved.body.error.message, /`aws\.secret_access_key` cannot be kept .*the url's origin changed; send it again/);
  const topic = (await gw.admin("GET", `${T}/destinations/topic`)).body;
  const elsewhere = await gw.admin("PUT", `${T}/destinations/topic`, { ...topic, url: "https://collector.example/v1/projects/acme-prod/topics/orders" });
  assertError(assert, elsewhere, 422, "validation_error");
  const kbasic = (await gw.admin("GET", `${T}/destinations/kbasic`)).body;
  const tokenless = await gw.admin("PUT", `${T}/destinations/kbasic`, { ...kbasic, url: kbasic.url.replace("127.0.0.1", "localhost") });
  assertError(assert, tokenless, 422, "validation_error");
  assert.equal((await gw.admin("GET", `${T}/destinations/bus`)).body.url, shown.url, "unchanged");
  const bad = async (doc, ...words) => {
    const r = await gw.admin("PUT", `${T}/destinations/x`, { secret: whsec(), ...doc });
    assertError(assert, r, 422, "validation_error");
    for (const w of words) assert.ok(r.body.error.message.includes(w), `${w} in ${r.body.error.message}`);
  };
  await bad({ kind: "sqs", url: urls.queue }, "`aws` is required for a destination of kind `sqs`");
  await bad({ kind: "sqs", url: `${aws.url}/orders`, aws: awsBlock() }, "SQS queue URL");
  await bad({ kind: "sqs", url: urls.queue, aws: { ...awsBlock(), region: "moon-1" } }, "`aws.region`");
  await bad({ kind: "eventbridge", url: `${aws.url}/`, aws: awsBlock(), eventbridge: { event_bus: "no spaces" } }, "`eventbridge.event_bus`");
  await bad({ url: urls.queue, aws: awsBlock() }, "`aws` does not apply");
  await bad({ kind: "smoke-signal", url: urls.queue }, "kind");
  assertError(assert, await gw.admin("GET", `${T}/destinations/x`), 404, "not_found");
});

const records = (id) => kafka.topics.get("orders").filter((r) => (r.api === "v3" ? r.headers["webhook-id"] : JSON.parse(r.value)["webhook-id"]) === id);

test("Kafka REST: v3 (basic and bearer) carries the exact bytes with signature headers, v2 a wrapped value; a refused password is dead-lettered", async () => {
  const s = sample(T, S, "standard");
  assert.equal((await post("kafka", s)).status, 200);
  const event = eventId(T, "kafka", s.pid);
  await until(() => ["kbasic", "kbearer", "kv2"].every((d) => records(`${event}.${d}`).length), 20_000, "the Kafka records");
  for (const d of ["kbasic", "kbearer"]) {
    const got = records(`${event}.${d}`);
    assert.equal(got.length, 1, `${d} once`);
    const [r] = got;
    assert.equal(r.key, "kafka", "keyed by source");
    assert.equal(r.headers["event-type"], "invoice.paid");
    assert.equal(new Webhook(secrets[d]).verify(r.value.toString("utf8"), r.headers).id, event);
  }
  const [v2] = records(`${event}.kv2`);
  const wrapped = JSON.parse(v2.value);
  assert.equal(v2.key, "kafka");
  assert.equal(new Webhook(secrets.kv2).verify(wrapped.body, wrapped).id, event, "v2's value wraps the signed body");
  let letter;
  await until(async () => {
    letter = (await gw.admin("GET", `${T}/dead-letters`)).body.data.find((l) => l.id === `${event}.kwrong`);
    return letter;
  }, 20_000, "the refused delivery's dead letter");
  assert.match(letter.last_error, /kafka answered 401 \(401\)/);
  assert.equal(records(`${event}.kwrong`).length, 0);
  const shown = (await gw.admin("GET", `${T}/destinations/kbasic`)).body;
  assert.deepEqual(shown.kafka.auth, { username: "svc", password: { set: true } });
});

test("Pub/Sub: one token for many events; data is the exact signed bytes; a token the bus refuses is renewed once and the event delivered", async () => {
  const topic = () => pubsub.topics.get("acme-prod/orders");
  const fetched = google.seen.token_fetches;
  const events = [sample(T, S, "standard"), sample(T, S, "standard"), sample(T, S, "standard")];
  for (const s of events) assert.equal((await post("pubsub", s)).status, 200);
  const ids = events.map((s) => eventId(T, "pubsub", s.pid));
  await until(() => ids.every((id) => topic().some((m) => m.attributes["webhook-id"] === `${id}.topic`)), 20_000, "the published messages");
  assert.equal(google.seen.token_fetches - fetched, 1, "one token fetch for three events");
  assert.deepEqual(pubsub.seen.scopes, ["https://www.googleapis.com/auth/pubsub"], "a token for Pub/Sub only");
  for (const id of ids) {
    const got = topic().filter((m) => m.attributes["webhook-id"] === `${id}.topic`);
    assert.equal(got.length, 1);
    assert.equal(new Webhook(secrets.topic).verify(got[0].data.toString("utf8"), got[0].attributes).id, id);
    assert.equal(got[0].attributes["event-type"], "invoice.paid");
    assert.equal(got[0].orderingKey, undefined, "not an ordered destination");
  }
  // Google revokes every token: the next publish is refused once, then goes with a new token.
  await fetch(`${google.url}/__expire`, { method: "POST" });
  const later = sample(T, S, "standard");
  assert.equal((await post("pubsub", later)).status, 200);
  const id = eventId(T, "pubsub", later.pid);
  await until(() => topic().some((m) => m.attributes["webhook-id"] === `${id}.topic`), 20_000, "the event after the token was refused");
  assert.equal(pubsub.seen.unauthenticated, 1);
  assert.equal(google.seen.token_fetches - fetched, 2);
  const e = await logged(id, (d) => d.status === "delivered");
  assert.deepEqual(e.attempts.map((a) => [a.status, a.state]), [[200, "delivered"]], "renewed within the one attempt");
  const shown = (await gw.admin("GET", `${T}/destinations/topic`)).body;
  assert.deepEqual(shown.google.service_account.private_key, { set: true });
});

test("deleting a Pub/Sub destination forgets its token: one created again under the name fetches its own", async () => {
  const doc = { kind: "pubsub", url: urls.topic, secret: secrets.topic, google: { service_account: account } };
  const publish = async () => {
    const s = sample(T, S, "standard");
    assert.equal((await post("pubsub", s)).status, 200);
    const id = eventId(T, "pubsub", s.pid);
    await until(() => pubsub.topics.get("acme-prod/orders").some((m) => m.attributes["webhook-id"] === `${id}.topic`), 20_000, "the event");
  };
  // A token held for the destination.
  await publish();
  const held = google.seen.token_fetches;
  await publish();
  assert.equal(google.seen.token_fetches, held, "held, not fetched again");
  assert.equal((await gw.admin("DELETE", `${T}/destinations/topic`)).status, 204);
  assert.equal((await gw.admin("PUT", `${T}/destinations/topic`, doc)).status, 201);
  await publish();
  assert.equal(google.seen.token_fetches, held + 1, "a new token, the old one was purged");
});

// Three ordering keys: a plain one, one with a space (SQS takes printable ASCII only: its group is
// the key's digest; Pub/Sub takes it as it is) and one over 128 characters (a digest from ingress on).
const sha = (s) => createHash("sha256").update(s).digest("hex");
const digest = (key) => `h:${sha(key).slice(0, 40)}`;
const LONG = `ord_${"x".repeat(150)}`;
const KEYS = [
  { key: "ord_a", envelope: "ord_a", group: "ord_a", orderingKey: "ord_a" },
  { key: "ord b", envelope: "ord b", group: digest("ord b"), orderingKey: "ord b" },
  { key: LONG, envelope: digest(LONG), group: digest(LONG), orderingKey: digest(LONG) },
];

/** Sends 4 events for each key to the `keyed` source (the keys at once, each key's one after another); answers their event ids by key. */
async function sendKeyed() {
  const ids = {};
  await Promise.all(KEYS.map(async ({ key }) => {
    for (let seq = 1; seq <= 4; seq++) {
      const pid = `msg_${randomBytes(6).toString("hex")}`;
      const body = JSON.stringify({ type: "order.updated", data: { order: key, seq } });
      assert.equal((await post("keyed", { body, headers: sign.standard(S.standard, body, { id: pid }) })).status, 200);
      (ids[key] ??= []).push(eventId(T, "keyed", pid));
    }
  }));
  return ids;
}

/** Each key's second event is refused once by the bus: an unordered sender would deliver 3 and 4 before it. */
const secondOnce = (envelope, nth) => JSON.parse(envelope).data.data.seq === 2 && nth === 1;

/** Asserts what a receiver of `got` (messages as {id, envelope, key}) sees per key: each event once, in the order sent, under the key's `field`. */
function assertPerKey(got, ids, field) {
  for (const k of KEYS) {
    const mine = got.filter((m) => m.envelope.data.data.order === k.key);
    assert.deepEqual(mine.map((m) => m.envelope.data.data.seq), [1, 2, 3, 4], `${k.envelope}: each event once, in the order sent`);
    assert.deepEqual(mine.map((m) => m.envelope.id), ids[k.key], `${k.envelope}: the events sent, in order`);
    for (const m of mine) {
      assert.equal(m.envelope.ordering_key, k.envelope, "the envelope names the key (bounded)");
      assert.equal(m.key, k[field], `${field} is the key's bounded form`);
    }
  }
}

/** The keyed events, sent once for the two tests below (either may run alone); the bus refuses each key's second event once. */
let keyedSent;
const keyed = () => (keyedSent ??= (() => {
  aws.unavailable = (params, nth) => params.QueueUrl === urls.ofifo && secondOnce(params.MessageBody, nth);
  pubsub.unavailable = (msg, nth) => secondOnce(Buffer.from(msg.data, "base64").toString("utf8"), nth);
  return sendKeyed();
})());

test("an ordered SQS FIFO queue: MessageGroupId is the event's ordering key (bounded), MessageDeduplicationId the delivery id, each group in order", async () => {
  const ids = await keyed();
  for (const id of Object.values(ids).flat()) await logged(id, (d) => d.deliveries.find((x) => x.destination === "ofifo")?.state === "delivered");
  const mine = new Set(Object.values(ids).flat());
  const got = aws.queues.get("keyed.fifo").messages.filter((m) => mine.has(m.attributes["webhook-id"].split(".")[0])).map((m) => {
    const verified = new Webhook(secrets.ofifo).verify(m.body, m.attributes);
    assert.equal(m.deduplicationId, m.attributes["webhook-id"], "deduplicated by the delivery id");
    assert.equal(m.deduplicationId, `${verified.id}.ofifo`);
    return { envelope: JSON.parse(m.body), key: m.groupId };
  });
  assert.equal(got.length, 12, "12 events, once each");
  assertPerKey(got, ids, "group");
  for (const { key } of KEYS) assert.equal(aws.tries.get(`${ids[key][1]}.ofifo`), 2, "the second event was refused once, then taken");
});

test("an ordered Pub/Sub topic: orderingKey is the event's ordering key, the same for each of a key's messages, in order", async () => {
  const ids = await keyed();
  for (const id of Object.values(ids).flat()) await logged(id, (d) => d.deliveries.find((x) => x.destination === "otopic")?.state === "delivered");
  const mine = new Set(Object.values(ids).flat());
  const got = pubsub.topics.get("acme-prod/keyed").filter((m) => mine.has(m.attributes["webhook-id"].split(".")[0])).map((m) => {
    const verified = new Webhook(secrets.otopic).verify(m.data.toString("utf8"), m.attributes);
    assert.equal(m.attributes["webhook-id"], `${verified.id}.otopic`);
    return { envelope: JSON.parse(m.data.toString("utf8")), key: m.orderingKey };
  });
  assert.equal(got.length, 12, "12 events, once each");
  assertPerKey(got, ids, "orderingKey");
  for (const { key } of KEYS) assert.equal(pubsub.tries.get(`${ids[key][1]}.otopic`), 2, "the second event was refused once, then published");
});
