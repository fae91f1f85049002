// Webhook destinations: one verified event fans out to every destination whose filter takes it,
// each delivery retried on its own under its own `webhook-id`; sources can name the destinations
// they feed; a destination's rotated secret keeps signing (both verify with the official Standard
// Webhooks library) until it expires; a paused destination gets its deliveries when resumed; a
// transform reshapes what one destination receives.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { startGateway, assertError, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc, sample, eventId } from "../samples.mjs";
import { sign } from "../signers.mjs";

const T = "fan";
const whsec = () => "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
const secrets = { own: whsec(), billing: whsec(), everything: whsec(), chat: whsec(), rotating: whsec(), old: whsec(), shaped: whsec() };
for (const s of [...Object.values(secrets), ...Object.values(S)]) planted.add(s);
let gw;
/** name -> the local endpoint standing in for it */
const dest = {};

before(async () => {
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  for (const name of ["own", "billing", "everything", "chat", "rotating", "shaped"]) dest[name] = await startDestination(secrets[name]);
  await gw.tenant(T, { destination: { url: dest.own.url, secret: secrets.own } });
  const put = async (path, doc, status = 201) => {
    const r = await gw.admin("PUT", `${T}/${path}`, doc);
    assert.equal(r.status, status, `${path}: ${r.text}`);
    return r;
  };
  await put("destinations/billing", { url: dest.billing.url, secret: secrets.billing, filter: { types: ["stripe.invoice.*", "stripe.charge.refunded"] } });
  await put("destinations/everything", { url: dest.everything.url, secret: secrets.everything });
  await put("destinations/chat", { url: dest.chat.url, secret: secrets.chat, filter: { types: ["message.*"] } });
  // Sources that feed named destinations only.
  await put("sources/stripe", sourceDoc(T, "stripe", S.stripe));
  await put("sources/rotation", { ...sourceDoc(T, "standard", S.standard), destinations: ["rotating"] });
  await put("sources/shaping", { ...sourceDoc(T, "standard", S.standard), destinations: ["shaped"] });
});
after(async () => {
  await gw?.stop();
  await Promise.all(Object.values(dest).map((d) => d.close()));
});

/** Asserts `t` is a Unix time in seconds between `fromS` and now (a second's slack each side). */
function assertSecondsSince(t, fromS, what) {
  const nowS = Date.now() / 1000;
  assert.ok(typeof t === "number" && t >= Math.floor(fromS) - 1 && t <= nowS + 1, `${what}: ${t} is not Unix seconds between ${fromS} and ${nowS}`);
}

const post = (source, s) => gw.request("POST", `/v1/webhooks/${T}/${source}`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });

test("one Stripe event reaches the destinations whose filters take it, each retried on its own until delivered", async () => {
  const s = sample(T, S, "stripe");
  s.body = JSON.stringify({ ...JSON.parse(s.body), type: "invoice.paid" });
  s.headers = sign.stripe(S.stripe, s.body);
  const event = eventId(T, "stripe", s.pid);
  const ids = { own: event, billing: `${event}.billing`, everything: `${event}.everything` };
  // Billing fails twice before taking it.
  dest.billing.behaviour = (n) => ({ status: n <= 2 ? 500 : 200 });
  try {
    const r = await post("stripe", s);
    assert.equal(r.status, 200, r.text);
    for (const [name, id] of Object.entries(ids)) await dest[name].until(() => dest[name].delivered.has(id), 20_000, `${name}'s delivery`);
    await new Promise((r) => setTimeout(r, 1500));
    for (const [name, id] of Object.entries(ids)) {
      assert.equal(dest[name].delivered.get(id).length, 1, `${name} got it once`);
      const [got] = dest[name].delivered.get(id);
      assert.equal(got.id, event, "the body names the event");
      assert.equal(got.type, "stripe.invoice.paid");
      assert.ok(dest[name].attempts.filter((a) => a.id === id).every((a) => a.verified), `${name} verified every attempt`);
    }
    assert.deepEqual(dest.billing.attempts.filter((a) => a.id === ids.billing).map((a) => a.status), [500, 500, 200], "billing's own retries");
    assert.equal(dest.everything.attempts.filter((a) => a.id === ids.everything).length, 1, "the others were not retried with it");
    assert.equal(dest.chat.attempts.length, 0, "chat's filter did not take it");
  } finally {
    dest.billing.behaviour = () => ({ status: 200 });
  }
});

test("a source that names its destinations feeds only them; a rotated secret signs next to the new one until it expires", async () => {
  const now = Math.floor(Date.now() / 1000);
  await gw.admin("PUT", `${T}/destinations/rotating`, { url: dest.rotating.url, secret: secrets.rotating, previous_secrets: [{ secret: secrets.old, expires_at: now + 3600 }] });
  const s = sample(T, S, "standard");
  assert.equal((await post("rotation", s)).status, 200);
  const id = `${eventId(T, "rotation", s.pid)}.rotating`;
  await dest.rotating.until(() => dest.rotating.delivered.has(id), 15_000, "the rotating destination's delivery");
  const attempt = dest.rotating.attempts.find((a) => a.id === id);
  // A receiver still on the old secret, and one already on the new, both verify it.
  for (const secret of [secrets.old, secrets.rotating]) {
    const verified = new Webhook(secret).verify(attempt.body, attempt.headers);
    assert.equal(verified.id, eventId(T, "rotation", s.pid));
  }
  assert.throws(() => new Webhook(whsec()).verify(attempt.body, attempt.headers), /signature/i);
  for (const other of ["own", "everything"]) assert.ok(![...dest[other].delivered.keys()].some((k) => k.startsWith(eventId(T, "rotation", s.pid))), `${other} is not fed by this source`);

  // Once the old secret has expired it no longer signs.
  await gw.admin("PUT", `${T}/destinations/rotating`, { url: dest.rotating.url, secret: secrets.rotating, previous_secrets: [{ secret: secrets.old, expires_at: now - 1 }] });
  const later = sample(T, S, "standard");
  assert.equal((await post("rotation", later)).status, 200);
  const laterId = `${eventId(T, "rotation", later.pid)}.rotating`;
  await dest.rotating.until(() => dest.rotating.delivered.has(laterId), 15_000, "the next delivery");
  const next = dest.rotating.attempts.find((a) => a.id === laterId);
  assert.throws(() => new Webhook(secrets.old).verify(next.body, next.headers));
  assert.ok(new Webhook(secrets.rotating).verify(next.body, next.headers));
});

test("a paused destination keeps its deliveries and sends them when resumed", async () => {
  const path = `${T}/destinations/rotating`;
  const doc = (await gw.admin("GET", path)).body;
  assert.deepEqual(doc.secret, { set: true }, "secrets are write-only");
  assert.equal((await gw.admin("PUT", path, { ...doc, paused: true })).status, 200);
  const s = sample(T, S, "standard");
  assert.equal((await post("rotation", s)).status, 200);
  const id = `${eventId(T, "rotation", s.pid)}.rotating`;
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(!dest.rotating.attempts.some((a) => a.id === id), "nothing sent while paused");
  assert.equal((await gw.admin("PUT", path, { ...doc, paused: false })).status, 200);
  await dest.rotating.until(() => dest.rotating.delivered.has(id), 20_000, "the held delivery");
  assert.equal(dest.rotating.delivered.get(id).length, 1);
});

test("a destination's transform reshapes the data it receives", async () => {
  await gw.admin("PUT", `${T}/destinations/shaped`, {
    url: dest.shaped.url,
    secret: secrets.shaped,
    transform: { field_mappings: { kind: "type", invoice: "data.invoice" }, transforms: { kind: ["uppercase"] }, defaults: { customer: "unknown" } },
  });
  const s = sample(T, S, "standard");
  assert.equal((await post("shaping", s)).status, 200);
  const id = `${eventId(T, "shaping", s.pid)}.shaped`;
  await dest.shaped.until(() => dest.shaped.delivered.has(id), 15_000, "the shaped delivery");
  const [got] = dest.shaped.delivered.get(id);
  assert.deepEqual(got.data, { kind: "INVOICE.PAID", invoice: "in_1", customer: "unknown" });
  assert.equal(got.type, "invoice.paid", "the envelope is kept");
});

test("destinations are validated when saved: filters, transforms and secrets; `default` is a record like the others", async () => {
  const bad = async (name, doc, ...words) => {
    const r = await gw.admin("PUT", `${T}/destinations/${name}`, doc);
    assertError(assert, r, 422, "validation_error");
    for (const w of words) assert.ok(r.body.error.message.includes(w), `${w} in ${r.body.error.message}`);
    assert.equal((await gw.admin("GET", `${T}/destinations/${name}`)).status, 404, "nothing saved");
  };
  // `default` is the tenant's own destination, a record like the others, its secret redacted.
  const own = await gw.admin("GET", `${T}/destinations/default`);
  assert.equal(own.status, 200, own.text);
  assert.deepEqual([own.body.url, own.body.secret], [dest.own.url, { set: true }]);
  assert.ok(!own.text.includes(secrets.own), "the secret never comes back");
  await bad("x", { url: dest.own.url, secret: "plain" }, "`secret`");
  await bad("x", { url: dest.own.url, secret: whsec(), filter: { types: ["no spaces"], condition: "data.[[" } }, "`filter.types[0]`", "`filter.condition`");
  await bad("x", { url: dest.own.url, secret: whsec(), transform: { field_mappings: { a: "b" }, transforms: { a: ["reverse"] } } }, "unknown transform `reverse`");
  const list = (await gw.admin("GET", `${T}/destinations`)).body.data.map((d) => d.id).sort();
  assert.deepEqual(list, ["billing", "chat", "default", "everything", "rotating", "shaped"]);
  assert.ok(!JSON.stringify(await gw.admin("GET", `${T}/destinations/billing`)).includes(secrets.billing));
});

/** Polls the event log for `id` until `ready(detail)` holds. */
async function logged(id, ready = () => true, ms = 15_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await gw.admin("GET", `${T}/events/${id}`);
    if (last.status === 200 && ready(last.body)) return last.body;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`event ${id} not logged as expected: ${last?.status} ${last?.text}`);
}

test("the event log shows every event, where it went and every attempt with its status", async () => {
  const page = (await gw.admin("GET", `${T}/events?source=stripe&type=stripe.invoice.*`)).body;
  assert.ok(page.data.length >= 1, JSON.stringify(page));
  const id = page.data[0].id;
  const e = await logged(id, (d) => d.status === "delivered" && d.attempts.length === 5);
  assert.equal(e.type, "stripe.invoice.paid");
  assert.deepEqual(e.deliveries.map((d) => [d.destination, d.state, d.attempts]), [["billing", "delivered", 3], ["default", "delivered", 1], ["everything", "delivered", 1]]);
  const billing = e.attempts.filter((a) => a.destination === "billing");
  assert.deepEqual(billing.map((a) => [a.attempt, a.status, a.state]), [[1, 500, "retrying"], [2, 500, "retrying"], [3, 200, "delivered"]]);
  assert.ok(billing.every((a) => a.answer === "{}" && a.duration_ms >= 0 && a.at > 0), `the destination's answer and timing: ${JSON.stringify(billing)}`);
  assert.equal(e.body, null, "bodies are not kept unless the tenant asks");
  // Filters: by status, by type pattern, and a page at a time.
  assert.ok(!(await gw.admin("GET", `${T}/events?status=failed`)).body.data.some((x) => x.id === id));
  assert.equal((await gw.admin("GET", `${T}/events?type=message.*`)).body.data.length, 0);
  const first = (await gw.admin("GET", `${T}/events?limit=1`)).body;
  assert.equal(first.data.length, 1);
  const second = (await gw.admin("GET", `${T}/events?limit=1&cursor=${first.next_cursor}`)).body;
  assert.notEqual(second.data[0]?.id, first.data[0].id, "the cursor moves on");
  assertError(assert, await gw.admin("GET", `${T}/events?status=lost`), 400, "invalid_request");
  assertError(assert, await gw.admin("GET", `${T}/events/evt_nothing`), 404, "not_found");
});

test("an event accepted for a tenant with no destination is in its event log as no_destination, not a dead letter", async () => {
  const lone = "fan-lone";
  await gw.tenant(lone);
  const r0 = await gw.admin("PUT", `${lone}/sources/stripe`, sourceDoc(lone, "stripe", S.stripe));
  assert.equal(r0.status, 201, r0.text);
  const s = sample(lone, S, "stripe");
  const r = await gw.request("POST", `/v1/webhooks/${lone}/stripe`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });
  assert.equal(r.status, 200, r.text);
  const id = eventId(lone, "stripe", s.pid);
  let e;
  for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    e = (await gw.admin("GET", `${lone}/events/${id}`)).body;
    if (e?.id) break;
  }
  assert.equal(e?.status, "no_destination", JSON.stringify(e));
  assert.deepEqual(e.deliveries, []);
  const listed = (await gw.admin("GET", `${lone}/events?status=no_destination`)).body.data.map((x) => x.id);
  assert.deepEqual(listed, [id]);
  assert.deepEqual((await gw.admin("GET", `${lone}/dead-letters`)).body.data, [], "nothing failed");
  // Its body was kept although the tenant keeps none: once the tenant has a destination, a retry
  // fans the event out to it. (An isolate may list the tenant's destinations from its cache for
  // a while yet: the retry is sent again until the new destination gets it.)
  assert.equal(e.body_kept, true, JSON.stringify(e));
  const secret = whsec();
  planted.add(secret);
  const first = await startDestination(secret);
  try {
    const r1 = await gw.admin("PUT", `${lone}/destinations/first`, { url: first.url, secret });
    assert.equal(r1.status, 201, r1.text);
    for (const end = Date.now() + 60_000; !first.delivered.has(`${id}.first`) && Date.now() < end; ) {
      const retried = await gw.admin("POST", `${lone}/events/${id}/retry`);
      assert.equal(retried.status, 202, retried.text);
      assert.deepEqual(retried.body, { event: id, fanned_out: true });
      await first.until(() => first.delivered.has(`${id}.first`), 5_000).catch(() => {});
    }
    const got = first.delivered.get(`${id}.first`);
    assert.ok(got, "the event reached the destination added after it");
    assert.equal(got[0].id, id);
  } finally {
    await first.close();
  }
});

test("one delivery is sent again from the kept body, or refused when there is nothing to send", async () => {
  const s = sample(T, S, "standard");
  const sentS = Date.now() / 1000;
  assert.equal((await post("rotation", s)).status, 200);
  const id = eventId(T, "rotation", s.pid);
  const delivered = await logged(id, (d) => d.status === "delivered");
  // The log's times are Unix seconds; an attempt's keep a millisecond fraction.
  assert.ok(delivered.attempts.length >= 1);
  for (const a of delivered.attempts) {
    assertSecondsSince(a.at, sentS, "an attempt's at");
    assert.ok(Math.abs(a.at - Date.now() / 1000) < 5, `the attempt was made just now, not at ${a.at}`);
    assert.ok(Math.abs(a.at * 1000 - Math.round(a.at * 1000)) < 0.01, `${a.at} has at most 3 decimals`);
  }
  assertSecondsSince(delivered.received_at, sentS, "received_at");
  assertSecondsSince(delivered.deliveries[0].last_attempt_at, sentS, "last_attempt_at");
  const listed = (await gw.admin("GET", `${T}/events?source=rotation&limit=1`)).body.data[0];
  assert.equal(listed.id, id);
  assert.equal(listed.deliveries[0].last_attempt_at, delivered.deliveries[0].last_attempt_at, "the list and the event agree");
  const refused = await gw.admin("POST", `${T}/events/${id}/retry?destination=rotating`);
  assertError(assert, refused, 409, "conflict");
  assert.match(refused.body.error.message, /keep_bodies/);

  const tenant = (await gw.admin("GET", T)).body;
  assert.equal((await gw.admin("PUT", T, { ...tenant, event_log: { keep_bodies: true } })).status, 200);
  const kept = sample(T, S, "standard");
  assert.equal((await post("rotation", kept)).status, 200);
  const keptId = eventId(T, "rotation", kept.pid);
  const detail = await logged(keptId, (d) => d.status === "delivered");
  assert.equal(detail.body.id, keptId, "the body is kept");
  const r = await gw.admin("POST", `${T}/events/${keptId}/retry?destination=rotating`);
  assert.equal(r.status, 202, r.text);
  await dest.rotating.until(() => dest.rotating.delivered.get(`${keptId}.rotating`)?.length === 2, 15_000, "the second delivery");
  await logged(keptId, (d) => d.deliveries[0].attempts === 2);
});

test("bulk retry: 100 dead-lettered deliveries of a destination are sent again, paced, and all arrive", async () => {
  const secret = whsec();
  planted.add(secret);
  dest.bulk = await startDestination(secret);
  dest.bulk.behaviour = () => ({ status: 410 });
  assert.equal((await gw.admin("PUT", `${T}/destinations/bulk`, { url: dest.bulk.url, secret, max_attempts: 1, rate_limit_per_second: 50 })).status, 201);
  assert.equal((await gw.admin("PUT", `${T}/sources/bulk`, { ...sourceDoc(T, "standard", S.standard), destinations: ["bulk"] })).status, 201);
  const since = Math.floor(Date.now() / 1000) - 1;
  const ids = [];
  for (let i = 0; i < 100; i += 10) {
    await Promise.all(Array.from({ length: 10 }, async () => {
      const s = sample(T, S, "standard");
      assert.equal((await post("bulk", s)).status, 200);
      ids.push(`${eventId(T, "bulk", s.pid)}.bulk`);
    }));
  }
  const dead = async () => (await gw.admin("GET", `${T}/dead-letters`)).body.data.filter((l) => ids.includes(l.id));
  await dest.bulk.until(() => dest.bulk.attempts.length >= 100, 30_000, "the first attempts");
  for (let end = Date.now() + 20_000; (await dead()).length < 100 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 300));
  assert.equal((await dead()).length, 100, "all dead-lettered");
  for (const l of await dead()) assertSecondsSince(l.dead_at, since, "dead_at");
  const failed = (await gw.admin("GET", `${T}/events?source=bulk&status=failed&limit=100`)).body.data;
  assert.equal(failed.length, 100, "the log shows them failed");

  dest.bulk.behaviour = () => ({ status: 200 });
  const started = Date.now();
  const r = await gw.admin("POST", `${T}/destinations/bulk/retry?since=${since}`);
  assert.equal(r.status, 202, r.text);
  assert.deepEqual([r.body.retried, r.body.per_second, r.body.over_seconds], [100, 50, 2], "paced at the destination's rate");
  await dest.bulk.until(() => ids.every((id) => dest.bulk.delivered.has(id)), 30_000, "every retried delivery");
  assert.ok(Date.now() - started >= 900, "paced, not all at once");
  assert.equal((await dead()).length, 0, "the letters are gone");
  await logged(ids[0].replace(/\.bulk$/, ""), (d) => d.status === "delivered");
  assert.equal((await gw.admin("POST", `${T}/destinations/bulk/retry?per_second=0`)).status, 400);
});

test("a destination's rate limit spaces its deliveries: 30 events at once reach a 10-a-second destination over seconds", async () => {
  const secret = whsec();
  planted.add(secret);
  dest.slow = await startDestination(secret);
  assert.equal((await gw.admin("PUT", `${T}/destinations/slow`, { url: dest.slow.url, secret, rate_limit_per_second: 10 })).status, 201);
  assert.equal((await gw.admin("PUT", `${T}/sources/slow`, { ...sourceDoc(T, "standard", S.standard), destinations: ["slow"] })).status, 201);
  const events = Array.from({ length: 30 }, () => sample(T, S, "standard"));
  const statuses = await Promise.all(events.map((s) => post("slow", s).then((r) => r.status)));
  assert.deepEqual([...new Set(statuses)], [200]);
  await dest.slow.until(() => dest.slow.delivered.size === 30, 30_000, "all 30");
  const times = dest.slow.attempts.map((a) => a.at).sort((a, b) => a - b);
  // Unthrottled they arrive within a fraction of a second; at 10 a second they take about 2 s.
  assert.ok(times.at(-1) - times[0] >= 1500, `spread over ${times.at(-1) - times[0]} ms`);
  assert.equal(dest.slow.attempts.length, 30, "waiting for its turn is not a failed attempt");
});

test("a destination whose every attempt fails for its period is disabled, holds its deliveries, and sends them when enabled again", async () => {
  const secret = whsec();
  planted.add(secret);
  dest.flaky = await startDestination(secret);
  dest.flaky.behaviour = () => ({ status: 503 });
  const startedS = Date.now() / 1000;
  const doc = { url: dest.flaky.url, secret, max_attempts: 20, disable_after_seconds: 2 };
  assert.equal((await gw.admin("PUT", `${T}/destinations/flaky`, doc)).status, 201);
  assert.equal((await gw.admin("PUT", `${T}/sources/flaky`, { ...sourceDoc(T, "standard", S.standard), destinations: ["flaky"] })).status, 201);
  const first = sample(T, S, "standard");
  assert.equal((await post("flaky", first)).status, 200);
  const firstId = `${eventId(T, "flaky", first.pid)}.flaky`;
  let shown;
  for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 300))) {
    shown = (await gw.admin("GET", `${T}/destinations/flaky`)).body;
    if (shown.disabled) break;
  }
  assert.ok(shown.disabled, "disabled after failing for its period");
  assert.match(shown.disabled.reason, /every attempt failed/);
  assert.ok(Number.isInteger(shown.disabled.at), `${shown.disabled.at} is whole seconds`);
  assertSecondsSince(shown.disabled.at, startedS, "disabled.at");
  // One an earlier version disabled, which wrote epoch ms, reads in seconds too.
  const kv = await gw.mf.getKVNamespace("CONFIG");
  const raw = JSON.parse(await kv.get(`destination:${T}:flaky`));
  await kv.put(`destination:${T}:flaky`, JSON.stringify({ ...raw, disabled: { ...raw.disabled, at: shown.disabled.at * 1000 + 123 } }));
  assert.equal((await gw.admin("GET", `${T}/destinations/flaky`)).body.disabled.at, shown.disabled.at);
  assert.ok(gw.logs.some((l) => l.message.includes('"destination_disabled":"flaky"')), "and logged");

  // While disabled nothing is attempted; a new event waits with the first.
  const tried = dest.flaky.attempts.length;
  const second = sample(T, S, "standard");
  assert.equal((await post("flaky", second)).status, 200);
  const secondId = `${eventId(T, "flaky", second.pid)}.flaky`;
  await new Promise((r) => setTimeout(r, 3000));
  assert.ok(dest.flaky.attempts.length <= tried + 1, "at most an attempt already under way");
  assert.ok(!dest.flaky.attempts.some((a) => a.id === secondId), "the new event waits");

  // Enabled again (saved without `disabled`) and healthy: both arrive.
  dest.flaky.behaviour = () => ({ status: 200 });
  const { disabled: _, ...enabled } = shown;
  assert.equal((await gw.admin("PUT", `${T}/destinations/flaky`, enabled)).status, 200);
  await dest.flaky.until(() => dest.flaky.delivered.has(firstId) && dest.flaky.delivered.has(secondId), 20_000, "the held deliveries");
});

test("rotate-secret mints a new secret shown once (never cached); the old one signs beside it until it expires; at most 3 are kept, and dropping an unexpired one takes force", async () => {
  const first = whsec();
  planted.add(first);
  dest.turning = await startDestination(first);
  assert.equal((await gw.admin("PUT", `${T}/destinations/turning`, { url: dest.turning.url, secret: first })).status, 201);
  assert.equal((await gw.admin("PUT", `${T}/sources/turning`, { ...sourceDoc(T, "standard", S.standard), destinations: ["turning"] })).status, 201);
  const path = `${T}/destinations/turning/rotate-secret`;
  const beforeS = Math.floor(Date.now() / 1000);
  const r = await gw.admin("POST", path, { old_expires_in_seconds: 600 });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.headers.get("cache-control"), "no-store", "no cache keeps the secret");
  const fresh = r.body.secret;
  // Shown in this answer only: from here on it must never appear in a response or a log line.
  planted.add(fresh);
  assert.match(fresh, /^whsec_[A-Za-z0-9+/]{43}=$/, "whsec_ and 32 bytes of base64");
  assert.notEqual(fresh, first);
  assert.ok(r.body.previous_expires_at >= beforeS + 600 && r.body.previous_expires_at <= Date.now() / 1000 + 601, `previous_expires_at ${r.body.previous_expires_at} is in 600 s`);

  // Receivers on either secret verify the next delivery with the official library.
  const s = sample(T, S, "standard");
  assert.equal((await post("turning", s)).status, 200);
  const id = `${eventId(T, "turning", s.pid)}.turning`;
  await dest.turning.until(() => dest.turning.delivered.has(id), 15_000, "the delivery after rotation");
  const attempt = dest.turning.attempts.find((a) => a.id === id);
  assert.equal(attempt.headers["webhook-signature"].split(" ").length, 2, "two signatures");
  for (const secret of [first, fresh]) assert.equal(new Webhook(secret).verify(attempt.body, attempt.headers).id, eventId(T, "turning", s.pid));

  // GET keeps both secrets write-only.
  const shown = (await gw.admin("GET", `${T}/destinations/turning`)).body;
  assert.deepEqual(shown.secret, { set: true });
  assert.equal(shown.previous_secrets.length, 1);
  assert.deepEqual(shown.previous_secrets[0].secret, { set: true });
  assert.equal(shown.previous_secrets[0].expires_at, r.body.previous_expires_at);

  // Rotated again and again (body optional: a day by default), it keeps the 3 newest; the
  // rotation that would stop an unexpired one early is refused unless forced.
  const minted = [fresh];
  for (let i = 0; i < 3; i++) {
    if (i === 2) {
      const before = (await gw.admin("GET", `${T}/destinations/turning`)).body;
      assertError(assert, await gw.admin("POST", path, { old_expires_in_seconds: 3600 }), 409, "conflict");
      assert.deepEqual((await gw.admin("GET", `${T}/destinations/turning`)).body, before, "refused: nothing changed");
    }
    const again = await gw.admin("POST", path, i === 0 ? undefined : { old_expires_in_seconds: 3600, ...(i === 2 ? { force: true } : {}) });
    assert.equal(again.status, 201, again.text);
    planted.add(again.body.secret);
    minted.push(again.body.secret);
    if (i === 2) assert.deepEqual(again.body.dropped_expires_at, [r.body.previous_expires_at], "the oldest, named");
  }
  assert.equal(new Set(minted).size, 4, "each rotation mints another secret");
  const kept = (await gw.admin("GET", `${T}/destinations/turning`)).body.previous_secrets;
  assert.equal(kept.length, 3, "at most 3 previous secrets");
  assert.ok(kept[0].expires_at >= beforeS + 3600 && kept[2].expires_at >= beforeS + 86_400, "newest first; the default keeps a day");
  // A previous secret's expiry in milliseconds is refused (it would sign for millennia).
  const ms = { url: dest.turning.url, secret: { set: true }, previous_secrets: [{ secret: first, expires_at: Date.now() }] };
  assertError(assert, await gw.admin("PUT", `${T}/destinations/turning`, ms), 422, "validation_error");

  // Bad input changes nothing.
  for (const bad of [{ old_expires_in_seconds: 59 }, { old_expires_in_seconds: 2_592_001 }, { old_expires_in_seconds: "1h" }, { other: 1 }]) {
    const refused = await gw.admin("POST", path, bad);
    assertError(assert, refused, 422, "validation_error");
  }
  assert.match((await gw.admin("POST", path, { old_expires_in_seconds: 1 })).body.error.message, /60.*2592000/);
  assertError(assert, await gw.admin("POST", `${T}/destinations/nowhere/rotate-secret`), 404, "not_found");
  const last = (await gw.admin("GET", `${T}/destinations/turning`)).body.previous_secrets;
  assert.deepEqual(last, kept, "refused rotations changed nothing");
});

test("no secret reached a log line", () => {
  assert.deepEqual(gw.leaks(), []);
});
