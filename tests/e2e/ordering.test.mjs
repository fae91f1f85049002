// Ordered delivery: a destination with `ordered: true` gets the events of one ordering key (for
// Stripe, the object the event is about) one at a time, in the order the gateway accepted them,
// whatever the queue does; a failing event holds only its own key; replays and bulk retries of
// dead letters go back in order too. The stand-in verifies every Standard Webhooks signature,
// fails at random (seeded per delivery and attempt, so a run is repeatable) or a set number of
// times, and counts the requests open at once per key. Waits poll for a condition; what is
// asserted is order and counts, not how long anything took.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startGateway, planted, until } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc, eventId } from "../samples.mjs";
import { sign } from "../signers.mjs";

const T = "seq";
const S = sourceSecrets();
const secret = "whsec_" + randomBytes(32).toString("base64");
for (const s of [secret, ...Object.values(S)]) planted.add(s);
let gw;
let dest;

before(async () => {
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  dest = await startDestination(secret);
  await gw.tenant(T, {});
  const put = async (path, doc) => {
    const r = await gw.admin("PUT", `${T}/${path}`, doc);
    assert.ok([200, 201].includes(r.status), `${path}: ${r.text}`);
  };
  await put("destinations/ledger", { url: dest.url, secret, ordered: true, max_attempts: 30 });
  await put("sources/stripe", sourceDoc(T, "stripe", S.stripe));
});
after(async () => {
  await gw?.stop();
  await dest?.close();
});

/** A Stripe event about customer `cus` (its ordering key), carrying its position `seq` in our sending. */
function stripeEvent(cus, seq, run) {
  const body = JSON.stringify({ id: `evt_${run}_${cus}_${seq}`, object: "event", type: "customer.updated", data: { object: { id: cus, seq } } });
  return { body, headers: { "content-type": "application/json", ...sign.stripe(S.stripe, body) } };
}

/** The gateway's id of that event, and of its delivery to the destination (`webhook-id`). */
const eventOf = (cus, seq, run) => eventId(T, "stripe", `evt_${run}_${cus}_${seq}`);
const deliveryOf = (cus, seq, run) => `${eventOf(cus, seq, run)}.ledger`;

async function post(e) {
  const r = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: e.body, headers: e.headers });
  assert.equal(r.status, 200, r.text);
}

/** What an attempt was about: its customer (key) and position. */
const about = (a) => {
  const o = JSON.parse(a.body).data.data.object;
  return { cus: o.id, seq: o.seq };
};

/** Sends `count` events for each of `keys`: the keys at once, each key's events one after another. */
async function sendAll(keys, count, run) {
  await Promise.all(keys.map(async (cus) => {
    for (let seq = 1; seq <= count; seq++) await post(stripeEvent(cus, seq, run));
  }));
}

/** Whether delivery `id`'s attempt `nth` fails: about `rate` of them, the same on every run. */
const fails = (id, nth, rate) => createHash("sha256").update(`seed-42/${id}/${nth}`).digest()[0] < rate * 256;

/** Refused for now, to be tried again in a second (so a set number of failures takes seconds, not more). */
const unavailable = { status: 503, headers: { "retry-after": "1" } };

/** Per key, the positions of the successful attempts in the order they were received. */
function receivedPerKey(attempts) {
  const per = {};
  for (const a of attempts.filter((a) => a.status === 200)) (per[about(a).cus] ??= []).push(about(a).seq);
  return per;
}

/** The key's attempts, in the order answered, as [position, status]. */
const triesOf = (cus, attempts = dest.attempts) => attempts.filter((a) => about(a).cus === cus).map((a) => [about(a).seq, a.status]);

/** Asserts the stand-in never had two requests of one of `keys` open at once. */
function assertOneAtATime(keys) {
  for (const cus of keys) assert.equal(dest.mostOpen.get(cus), 1, `${cus}: at most one request open at a time`);
}

/** Waits until the event log has each of `events` (ids) in `status`: the log is written after the destination answered, so what the stand-in counted then is final. */
async function logShows(events, status, ms = 30_000) {
  const want = new Set(events);
  let seen = 0;
  await until(async () => {
    const found = new Set();
    let cursor = "";
    do {
      const r = await gw.admin("GET", `${T}/events?status=${status}&limit=100${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(r.status, 200, r.text);
      for (const e of r.body.data) if (want.has(e.id)) found.add(e.id);
      cursor = r.body.next_cursor ?? "";
    } while (cursor);
    seen = found.size;
    return seen === want.size;
  }, ms, `${want.size} events ${status} in the log`).catch((e) => assert.fail(`${e.message}: ${seen} of ${want.size}`));
}

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

test("200 Stripe events over 10 keys to an ordered destination failing 30% at random: all delivered once, each key in order, one at a time, keys interleaved", async () => {
  const started = Date.now();
  const keys = range(10).map((k) => `cus_k${k}`);
  dest.behaviour = (nth, body) => (fails(body.id + body.data.data.object.seq, nth, 0.3) ? { ...unavailable, delayMs: 20 } : { status: 200, delayMs: 20 });
  await sendAll(keys, 20, "a");
  await logShows(keys.flatMap((cus) => range(20).map((seq) => eventOf(cus, seq, "a"))), "delivered", 150_000);
  const attempts = dest.attempts.filter((a) => keys.includes(about(a).cus));
  assert.ok(attempts.every((a) => a.verified), "every attempt was signed");
  const failed = attempts.filter((a) => a.status === 503).length;
  assert.ok(failed >= 30, `the stand-in failed ${failed} attempts`);
  // By webhook-id: each delivery got through once, after its failed tries, and was not sent again.
  const expected = new Set(keys.flatMap((cus) => range(20).map((seq) => deliveryOf(cus, seq, "a"))));
  const tries = new Map();
  for (const a of attempts) tries.set(a.id, [...(tries.get(a.id) ?? []), a.status]);
  assert.deepEqual([...tries.keys()].filter((id) => !expected.has(id)), [], "no delivery of another id");
  for (const id of expected) {
    const statuses = tries.get(id) ?? [];
    assert.deepEqual(statuses, [...statuses.slice(0, -1).map(() => 503), 200], `${id}: retried while refused, then delivered once (got ${statuses})`);
  }
  const per = receivedPerKey(attempts);
  for (const cus of keys) assert.deepEqual(per[cus], range(20), `${cus}: delivered in the order sent`);
  assertOneAtATime(keys);
  // Keys go on side by side: the receipts are not grouped key by key.
  const order = attempts.filter((a) => a.status === 200).map((a) => about(a).cus);
  const switches = order.filter((c, i) => i > 0 && c !== order[i - 1]).length;
  assert.ok(switches >= 50, `receipts interleave across keys (${switches} switches of 199)`);
  console.log(`# ordered e2e: 200 events, ${attempts.length} attempts, ${failed} failed, ${switches} switches, ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("a key whose head fails 3 times holds only itself: the other key is delivered meanwhile, then the held key drains in order", async () => {
  dest.behaviour = (nth, body) => {
    const o = body.data.data.object;
    return o.id === "cus_hold" && o.seq === 1 && nth <= 3 ? unavailable : { status: 200 };
  };
  await sendAll(["cus_hold"], 4, "b");
  // Its head was refused once: the key is held (two more refusals to come, a second apart).
  await dest.until(() => triesOf("cus_hold").length >= 1, 20_000, "the held key's first try");
  await sendAll(["cus_free"], 4, "b");
  await dest.until(() => (receivedPerKey(dest.attempts).cus_hold ?? []).length === 4, 30_000, "the held key's events");
  await logShows(["cus_hold", "cus_free"].flatMap((cus) => range(4).map((seq) => eventOf(cus, seq, "b"))), "delivered");
  assert.deepEqual(triesOf("cus_free"), range(4).map((seq) => [seq, 200]), "the free key: in order, once each");
  assert.deepEqual(triesOf("cus_hold"), [[1, 503], [1, 503], [1, 503], [1, 200], [2, 200], [3, 200], [4, 200]], "the held key: nothing behind its head tried before it got through");
  // The free key did not wait for the held one.
  const receipts = dest.attempts.filter((a) => a.status === 200).map((a) => about(a));
  const headThrough = receipts.findIndex((r) => r.cus === "cus_hold" && r.seq === 1);
  const freeDone = receipts.findLastIndex((r) => r.cus === "cus_free");
  assert.ok(freeDone < headThrough, `the free key was delivered while the held key was held (free's last at ${freeDone}, held head at ${headThrough})`);
  assertOneAtATime(["cus_hold"]);
});

test("dead letters of an ordered key go back in order on a bulk retry, one at a time; a single replay waits behind the key's delivery in flight", async () => {
  // 3..7 are refused for good (dead-lettered one by one); the others get through.
  let refusing = true;
  dest.behaviour = (nth, body) => {
    const o = body.data.data.object;
    return { status: o.id === "cus_dead" && refusing && o.seq >= 3 && o.seq <= 7 ? 410 : 200 };
  };
  await sendAll(["cus_dead"], 8, "c");
  await dest.until(() => (receivedPerKey(dest.attempts).cus_dead ?? []).length === 3, 30_000, "1, 2 and 8");
  assert.deepEqual(triesOf("cus_dead"), [[1, 200], [2, 200], [3, 410], [4, 410], [5, 410], [6, 410], [7, 410], [8, 200]], "each tried in order; a dead letter lets its key go on");
  // Slow answers now: deliveries sent side by side would be open at once.
  refusing = false;
  dest.behaviour = () => ({ status: 200, delayMs: 150 });
  dest.mostOpen.delete("cus_dead");
  const before = dest.attempts.length;
  const r = await gw.admin("POST", `${T}/destinations/ledger/retry?per_second=1000`);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.retried, 5);
  await logShows([3, 4, 5, 6, 7].map((seq) => eventOf("cus_dead", seq, "c")), "delivered");
  assert.deepEqual(triesOf("cus_dead", dest.attempts.slice(before)), [3, 4, 5, 6, 7].map((s) => [s, 200]), "in order, once each");
  assertOneAtATime(["cus_dead"]);

  // 9 is refused and dead-lettered; 10 comes and is refused twice. 9's replay, asked for while 10
  // is being tried, goes through the key's sequencer: behind 10, not beside it.
  dest.behaviour = (nth, body) => {
    const seq = body.data.data.object.seq;
    if (seq === 9 && nth === 1) return { status: 410 };
    return seq === 10 && nth <= 2 ? unavailable : { status: 200 };
  };
  const from = dest.attempts.length;
  await post(stripeEvent("cus_dead", 9, "c"));
  let letter;
  await until(async () => {
    letter = (await gw.admin("GET", `${T}/dead-letters`)).body.data.find((l) => l.id === deliveryOf("cus_dead", 9, "c"));
    return letter;
  }, 20_000, "9's dead letter");
  assert.equal(letter.message.order?.key, "stripe/cus_dead", "the dead letter keeps its position in its key");
  assert.equal(letter.message.order.n, 9);
  await post(stripeEvent("cus_dead", 10, "c"));
  await dest.until(() => triesOf("cus_dead", dest.attempts.slice(from)).some(([seq]) => seq === 10), 20_000, "10's first try");
  const replay = await gw.admin("POST", `${T}/dead-letters/${letter.id}/replay`);
  assert.equal(replay.status, 202, replay.text);
  await logShows([9, 10].map((seq) => eventOf("cus_dead", seq, "c")), "delivered");
  assert.deepEqual(triesOf("cus_dead", dest.attempts.slice(from)), [[9, 410], [10, 503], [10, 503], [10, 200], [9, 200]], "the replay waited for 10");
  assertOneAtATime(["cus_dead"]);
});
