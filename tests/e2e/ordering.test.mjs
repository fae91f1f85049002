// Ordered delivery: a destination with `ordered: true` gets the events of one ordering key (for
// Stripe, the object the event is about) one at a time, in the order the gateway accepted them,
// whatever the queue does; a failing event holds only its own key; replays and bulk retries of
// dead letters go back in order too. The stand-in verifies every Standard Webhooks signature and
// fails at random (seeded per delivery and attempt, so a run is repeatable).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startGateway, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc } from "../samples.mjs";
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

/** A Stripe event about customer `cus` (its ordering key), carrying its place `seq` in our sending. */
function stripeEvent(cus, seq, run) {
  const body = JSON.stringify({ id: `evt_${run}_${cus}_${seq}`, object: "event", type: "customer.updated", data: { object: { id: cus, seq } } });
  return { body, headers: { "content-type": "application/json", ...sign.stripe(S.stripe, body) } };
}

async function post(e) {
  const r = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: e.body, headers: e.headers });
  assert.equal(r.status, 200, r.text);
}

/** What an attempt was about: its customer (key) and place. */
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

/** Per key, the places of the successful attempts in the order they were received. */
function receivedPerKey(attempts) {
  const per = {};
  for (const a of attempts.filter((a) => a.status === 200)) (per[about(a).cus] ??= []).push(about(a).seq);
  return per;
}

/** Asserts no two attempts of one key were open at once. */
function assertOneAtATime(attempts) {
  const per = {};
  for (const a of attempts) (per[about(a).cus] ??= []).push(a);
  for (const [cus, list] of Object.entries(per)) {
    list.sort((x, y) => x.startedAt - y.startedAt);
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i].startedAt >= list[i - 1].at, `${cus}: ${about(list[i]).seq} was sent while ${about(list[i - 1]).seq} was still open`);
    }
  }
}

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

test("200 Stripe events over 10 keys to an ordered destination failing 30% at random: all delivered, each key in order, one at a time", async () => {
  const started = Date.now();
  const keys = range(10).map((k) => `cus_k${k}`);
  dest.behaviour = (nth, body) => ({ status: fails(body.id + body.data.data.object.seq, nth, 0.3) ? 503 : 200, delayMs: 20 });
  await sendAll(keys, 20, "a");
  const mine = () => dest.attempts.filter((a) => keys.includes(about(a).cus));
  await dest.until(() => mine().filter((a) => a.status === 200).length >= 200, 150_000, "200 deliveries");
  await new Promise((r) => setTimeout(r, 1500));
  const attempts = mine();
  assert.ok(attempts.every((a) => a.verified), "every attempt was signed");
  const failed = attempts.filter((a) => a.status === 503).length;
  assert.ok(failed >= 30, `the stand-in failed ${failed} attempts`);
  const per = receivedPerKey(attempts);
  for (const cus of keys) assert.deepEqual(per[cus], range(20), `${cus}: delivered once each, in the order sent`);
  assertOneAtATime(attempts);
  // Keys go on side by side: some attempts of different keys were open at once, and the
  // receipts are not grouped key by key.
  const overlapping = attempts.some((a) => attempts.some((b) => about(a).cus !== about(b).cus && a.startedAt < b.at && b.startedAt < a.at));
  assert.ok(overlapping, "different keys were delivered concurrently");
  const order = attempts.filter((a) => a.status === 200).map((a) => about(a).cus);
  const switches = order.filter((c, i) => i > 0 && c !== order[i - 1]).length;
  assert.ok(switches > 20, `receipts interleave across keys (${switches} switches)`);
  // The event log has them all delivered.
  let delivered = 0;
  let cursor = "";
  do {
    const r = await gw.admin("GET", `${T}/events?status=delivered&limit=100${cursor ? `&cursor=${cursor}` : ""}`);
    assert.equal(r.status, 200, r.text);
    delivered += r.body.data.length;
    cursor = r.body.next_cursor ?? "";
  } while (cursor);
  assert.ok(delivered >= 200, `the log shows ${delivered} delivered`);
  console.log(`# ordered e2e: 200 events, ${attempts.length} attempts, ${failed} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test("a key whose head keeps failing holds only itself; the other keys go on, then it drains in order", async () => {
  let holding = true;
  dest.behaviour = (nth, body) => ({ status: body.data.data.object.id === "cus_hold" && holding ? 503 : 200 });
  await sendAll(["cus_hold"], 4, "b");
  await new Promise((r) => setTimeout(r, 500));
  await sendAll(["cus_free"], 4, "b");
  await dest.until(() => (receivedPerKey(dest.attempts).cus_free ?? []).length === 4, 30_000, "the free key's events");
  assert.deepEqual(receivedPerKey(dest.attempts).cus_free, range(4));
  const held = dest.attempts.filter((a) => about(a).cus === "cus_hold");
  assert.ok(held.length >= 1 && held.every((a) => about(a).seq === 1), `only the held key's head was tried: ${held.map((a) => about(a).seq)}`);
  holding = false;
  await dest.until(() => (receivedPerKey(dest.attempts).cus_hold ?? []).length === 4, 60_000, "the held key's events");
  assert.deepEqual(receivedPerKey(dest.attempts).cus_hold, range(4));
  assertOneAtATime(dest.attempts.filter((a) => about(a).cus === "cus_hold"));
});

test("dead letters of an ordered key go back in order on a bulk retry, one at a time; a single replay passes through the sequencer", async () => {
  // 3..7 are refused for good (dead-lettered one by one); the others get through.
  let refusing = true;
  dest.behaviour = (nth, body) => {
    const o = body.data.data.object;
    return { status: o.id === "cus_dead" && refusing && o.seq >= 3 && o.seq <= 7 ? 410 : 200 };
  };
  await sendAll(["cus_dead"], 8, "c");
  await dest.until(() => (receivedPerKey(dest.attempts).cus_dead ?? []).length === 3, 30_000, "1, 2 and 8");
  assert.deepEqual(receivedPerKey(dest.attempts).cus_dead, [1, 2, 8], "a dead letter lets its key go on");
  const refusedOrder = dest.attempts.filter((a) => about(a).cus === "cus_dead" && a.status === 410).map((a) => about(a).seq);
  assert.deepEqual(refusedOrder, [3, 4, 5, 6, 7], "each tried in order before it was dead-lettered");
  // Slow answers now: deliveries sent side by side would overlap.
  dest.behaviour = () => ({ status: 200, delayMs: 150 });
  const before = dest.attempts.length;
  const r = await gw.admin("POST", `${T}/destinations/ledger/retry?per_second=1000`);
  assert.equal(r.status, 202, r.text);
  assert.equal(r.body.retried, 5);
  const again = () => dest.attempts.slice(before).filter((a) => about(a).cus === "cus_dead");
  await dest.until(() => again().length >= 5, 30_000, "the replayed dead letters");
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(again().map((a) => [about(a).seq, a.status]), [3, 4, 5, 6, 7].map((s) => [s, 200]), "in order, once each");
  assertOneAtATime(again());

  // One more refused, then replayed on its own: it goes through the key's sequencer again.
  refusing = true;
  dest.behaviour = (nth, body) => ({ status: body.data.data.object.seq === 9 && refusing ? 410 : 200 });
  await post(stripeEvent("cus_dead", 9, "c"));
  const letters = async () => (await gw.admin("GET", `${T}/dead-letters`)).body.data;
  await dest.until(() => dest.attempts.some((a) => about(a).cus === "cus_dead" && about(a).seq === 9), 20_000, "9's refusal");
  let letter;
  for (let i = 0; i < 40 && !letter; i++) {
    letter = (await letters()).find((l) => l.message?.order?.key === "stripe/cus_dead");
    if (!letter) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(letter, "9 is a dead letter with its place in order");
  assert.equal(letter.message.order.n, 9);
  refusing = false;
  const replay = await gw.admin("POST", `${T}/dead-letters/${letter.id}/replay`);
  assert.equal(replay.status, 202, replay.text);
  await dest.until(() => dest.attempts.some((a) => about(a).cus === "cus_dead" && about(a).seq === 9 && a.status === 200), 20_000, "9's replay");
});
