// Webhook ingress end to end: each provider's signed sample reaches a local destination exactly
// once as a verifiable Standard Webhooks delivery; redeliveries are deduped; failures are retried
// with backoff and end in the dead-letter record, from which replay delivers them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startGateway, assertError, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sign } from "../signers.mjs";
import { sourceSecrets, sourceDoc, sample as makeSample, eventId as evtId, resign, bodyId, twilioUrl } from "../samples.mjs";

const T = "hooks";
const DEST_SECRET = "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
const VERIFY_TOKEN = "meta-verify-" + randomBytes(6).toString("hex");
for (const s of [DEST_SECRET, VERIFY_TOKEN, ...Object.values(S)]) planted.add(s);

let gw, dest;
before(async () => {
  gw = await startGateway({ extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  dest = await startDestination(DEST_SECRET);
  await gw.tenant(T, { destination: { url: dest.url, secret: DEST_SECRET, timeout_ms: 500 }, limits: { max_delivery_attempts: 3 } });
  for (const [kind, secret] of Object.entries(S)) {
    const r = await gw.admin("PUT", `${T}/sources/${kind}`, sourceDoc(T, kind, secret, VERIFY_TOKEN));
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => {
  await gw?.stop();
  await dest?.close();
});

const uid = () => randomBytes(6).toString("hex");

/** Polls the tenant's dead-letter record until the letter `id` appears (or `ms` pass). */
async function deadLetter(tenant, id, ms = 25000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const letter = (await gw.admin("GET", `${tenant}/dead-letters`)).body.data?.find((l) => l.id === id);
    if (letter) return letter;
    await new Promise((r) => setTimeout(r, 300));
  }
  return undefined;
}
const eventId = (source, providerId) => evtId(T, source, providerId);
const sample = (kind) => makeSample(T, S, kind);

const post = (source, s, extra = {}) =>
  gw.request("POST", `/v1/webhooks/${T}/${source}`, { body: s.body, headers: { "content-type": "application/json", ...s.headers, ...extra } });

for (const kind of Object.keys(S)) {
  test(`${kind}: a signed sample is delivered exactly once, signed as a Standard Webhooks sender`, async () => {
    const s = sample(kind);
    const r = await post(kind, s);
    assert.equal(r.status, 200, r.text);
    const id = eventId(kind, s.pid);
    await dest.until(() => dest.delivered.has(id), 15000, `delivery of ${kind}`);
    const first = dest.attempts.find((a) => a.id === id);
    assert.equal(first.verified, true, "the destination verified the gateway's signature");
    const [event] = dest.delivered.get(id);
    assert.equal(event.id, id);
    assert.equal(event.type, s.type);
    assert.equal(event.tenant, T);
    assert.equal(event.source, kind);
    assert.equal(event.source_kind, kind);
    if (s.type === "message.received") {
      assert.equal(event.data.direction, "inbound");
      assert.ok(event.data.conversation_id, JSON.stringify(event.data));
    }
    // A redelivery by the provider is answered 200 and not delivered again.
    const again = await post(kind, { ...s, headers: resign(S, kind, s) });
    assert.equal(again.status, 200, again.text);
    if (kind !== "twilio") assert.equal(again.body.duplicates, 1);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal(dest.delivered.get(id).length, 1, "delivered exactly once");
  });
}

// GitHub, Shopify and generic HMAC senders sign the body only: a captured request replayed with a
// fresh delivery-id header (and another event type) is the same event, delivered once, and the
// delivery says which of its values came from unsigned headers.
for (const [kind, idHeader, typeHeader] of [
  ["github", "x-github-delivery", "x-github-event"],
  ["shopify", "x-shopify-event-id", "x-shopify-topic"],
  ["hmac", "x-event-id", undefined],
]) {
  test(`${kind}: a replay under a fresh unsigned delivery id is a duplicate`, async () => {
    const s = sample(kind);
    assert.equal((await post(kind, s)).status, 200);
    const id = eventId(kind, s.pid);
    await dest.until(() => dest.delivered.has(id), 15000, `delivery of ${kind}`);
    const [event] = dest.delivered.get(id);
    assert.equal(event.unsigned[Object.keys(event.unsigned).find((h) => h.toLowerCase() === idHeader)], s.headers[idHeader]);
    for (let i = 0; i < 3; i++) {
      const forged = { ...s.headers, [idHeader]: `replay-${i}-${uid()}` };
      if (typeHeader) forged[typeHeader] = kind === "github" ? "pull_request" : "orders/paid";
      const r = await post(kind, { ...s, headers: forged });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.duplicates, 1, `replay ${i} is a duplicate`);
    }
    await new Promise((res) => setTimeout(res, 1000));
    assert.equal(dest.delivered.get(id).length, 1, "delivered once");
  });
}

test("a generic HMAC source whose timestamp header is not signed is refused", async () => {
  const doc = sourceDoc(T, "hmac", S.hmac, VERIFY_TOKEN);
  for (const hmac of [{ ...doc.hmac, template: "{body}" }, { ...doc.hmac, template: undefined }]) {
    const r = await gw.admin("PUT", `${T}/sources/unsigned-ts`, { ...doc, hmac });
    assertError(assert, r, 422, "validation_error");
    assert.match(r.body.error.message, /timestamp_header.*does not sign `\{timestamp\}`/);
  }
  assertError(assert, await gw.admin("GET", `${T}/sources/unsigned-ts`), 404, "not_found");
});

test("a destination that fails twice (503, then 429 with Retry-After) gets the event on attempt 3", async () => {
  const s = sample("stripe");
  const id = eventId("stripe", s.pid);
  dest.behaviour = (nth) => (nth === 1 ? { status: 503 } : nth === 2 ? { status: 429, headers: { "retry-after": "1" } } : { status: 200 });
  try {
    assert.equal((await post("stripe", s)).status, 200);
    await dest.until(() => dest.delivered.has(id), 20000, "delivery after retries");
    const attempts = dest.attempts.filter((a) => a.id === id);
    assert.deepEqual(attempts.map((a) => a.status), [503, 429, 200]);
    assert.ok(attempts.every((a) => a.verified), "every attempt is signed");
    assert.ok(attempts[1].at - attempts[0].at >= 400, "the retry waited");
  } finally {
    dest.behaviour = () => ({ status: 200 });
  }
});

test("a destination that times out is retried", async () => {
  const s = sample("github");
  const id = eventId("github", s.pid);
  dest.behaviour = (nth) => (nth === 1 ? { status: 200, delayMs: 1500 } : { status: 200 });
  try {
    assert.equal((await post("github", s)).status, 200);
    await dest.until(() => dest.attempts.filter((a) => a.id === id).length >= 2 && dest.delivered.get(id)?.length >= 1, 20000, "retry after timeout");
  } finally {
    dest.behaviour = () => ({ status: 200 });
  }
});

test("a destination that always fails puts the event in the dead-letter record; replay delivers it", async () => {
  const s = sample("shopify");
  const id = eventId("shopify", s.pid);
  dest.behaviour = () => ({ status: 500 });
  try {
    assert.equal((await post("shopify", s)).status, 200);
    const letter = await deadLetter(T, id);
    assert.ok(letter, "the event was dead-lettered");
    assert.equal(letter.attempts, 3, "after the tenant's max_delivery_attempts");
    assert.equal(letter.queue, "events");
    assert.match(letter.last_error, /500/);
    // Unix seconds with a millisecond fraction, found within moments of dying.
    assert.ok(Math.abs(letter.dead_at - Date.now() / 1000) < 5, `dead_at ${letter.dead_at} is not Unix seconds of now`);
    assert.equal(dest.attempts.filter((a) => a.id === id).length, 3);
    assert.equal(dest.delivered.has(id), false);
  } finally {
    dest.behaviour = () => ({ status: 200 });
  }
  const replay = await gw.admin("POST", `${T}/dead-letters/${id}/replay`);
  assert.equal(replay.status, 202, replay.text);
  await dest.until(() => dest.delivered.has(id), 15000, "replayed delivery");
  assert.equal(dest.delivered.get(id)[0].id, id, "replay keeps the webhook-id");
  const after = await gw.admin("GET", `${T}/dead-letters`);
  assert.equal(after.body.data.some((l) => l.id === id), false);
  assertError(assert, await gw.admin("POST", `${T}/dead-letters/${id}/replay`), 404, "not_found");
});

test("a permanent refusal (410) is dead-lettered at once", async () => {
  const s = sample("standard");
  const id = eventId("standard", s.pid);
  dest.behaviour = () => ({ status: 410 });
  try {
    assert.equal((await post("standard", s)).status, 200);
    const letter = await deadLetter(T, id);
    assert.ok(letter);
    assert.equal(letter.attempts, 1);
  } finally {
    dest.behaviour = () => ({ status: 200 });
  }
});

test("Meta's subscription handshake echoes the challenge only for the right token", async () => {
  const ok = await gw.request("GET", `/v1/webhooks/${T}/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`);
  assert.equal(ok.status, 200);
  assert.equal(ok.text, "1158201444");
  assert.match(ok.headers.get("content-type"), /^text\/plain/);
  assertError(assert, await gw.request("GET", `/v1/webhooks/${T}/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1`), 403, "permission_denied");
  assertError(assert, await gw.request("GET", `/v1/webhooks/${T}/whatsapp`), 400, "invalid_request");
});

test("Slack url_verification and ssl_check; GitHub ping", async () => {
  const body = JSON.stringify({ token: "x", challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", type: "url_verification" });
  const r = await gw.request("POST", `/v1/webhooks/${T}/slack`, { body, headers: { "content-type": "application/json", ...sign.slack(S.slack, body) } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" });
  const ssl = await gw.request("POST", `/v1/webhooks/${T}/slack`, { body: "ssl_check=1&token=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
  assert.equal(ssl.status, 200);
  const ping = JSON.stringify({ zen: "Design for failure.", hook_id: 1 });
  const p = await gw.request("POST", `/v1/webhooks/${T}/github`, { body: ping, headers: { "content-type": "application/json", ...sign.github(S.github, ping, { event: "ping", delivery: uid() }) } });
  assert.equal(p.status, 200);
  assert.equal(p.body.received, 0);
});

test("bad webhooks: unknown tenant or source 404, bad or stale signatures 401 with the failed check, oversized 413", async () => {
  const s = sample("stripe");
  assertError(assert, await gw.request("POST", `/v1/webhooks/nobody/stripe`, { body: s.body, headers: s.headers }), 404, "not_found");
  assertError(assert, await gw.request("POST", `/v1/webhooks/${T}/nothing`, { body: s.body, headers: s.headers }), 404, "not_found");
  const missing = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: s.body, headers: { "content-type": "application/json" } });
  assertError(assert, missing, 401, "authentication_error");
  assert.match(missing.body.error.message, /missing Stripe-Signature/);
  const wrong = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: s.body, headers: sign.stripe("whsec_wrong", s.body) });
  assertError(assert, wrong, 401, "authentication_error");
  assert.match(wrong.body.error.message, /does not match/);
  assert.ok(!wrong.text.includes(S.stripe));
  const stale = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: s.body, headers: sign.stripe(S.stripe, s.body, { ts: Math.floor(Date.now() / 1000) - 600 }) });
  assertError(assert, stale, 401, "authentication_error");
  assert.match(stale.body.error.message, /tolerance/);
  const tampered = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: s.body.replace("2000", "2001"), headers: s.headers });
  assertError(assert, tampered, 401, "authentication_error");
  const big = "x".repeat(1024 * 1024 + 1);
  assertError(assert, await gw.request("POST", `/v1/webhooks/${T}/github`, { body: big, headers: sign.github(S.github, big, { delivery: uid() }) }), 413, "payload_too_large");
  // None of them reached the destination.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(dest.delivered.has(eventId("stripe", s.pid)), false);
});

test("every verified payload is an event: Twilio's Voice test request and an unreadable Meta body are delivered typed", async () => {
  // What Twilio's console sends to test a webhook URL: a Voice request, signed like any other.
  const voice = new URLSearchParams({ AccountSid: "AC1", CallSid: `CA${uid()}`, CallStatus: "ringing", Direction: "inbound", From: "+15558675310", To: "+15017122661", ApiVersion: "2010-04-01" }).toString();
  const r = await gw.request("POST", `/v1/webhooks/${T}/twilio`, { body: voice, headers: sign.twilio(S.twilio, voice, { url: twilioUrl(T, "twilio") }) });
  assert.equal(r.status, 200, r.text);
  const callId = eventId("twilio", `${new URLSearchParams(voice).get("CallSid")}:ringing`);
  await dest.until(() => dest.delivered.has(callId), 15000, "the voice event");
  const [call] = dest.delivered.get(callId);
  assert.equal(call.type, "twilio.call.ringing");
  assert.equal(call.data.From, "+15558675310");

  // Verified, but not JSON: delivered as it came rather than refused.
  const body = '{"object":"whatsapp_business_account","entry":[{"changes":[' + uid();
  const w = await gw.request("POST", `/v1/webhooks/${T}/whatsapp`, { body, headers: { "content-type": "application/json", ...sign.whatsapp(S.whatsapp, body) } });
  assert.equal(w.status, 200, w.text);
  const id = eventId("whatsapp", bodyId(body));
  await dest.until(() => dest.delivered.has(id), 15000, "the unrecognized event");
  const [event] = dest.delivered.get(id);
  assert.equal(event.type, "whatsapp.unrecognized");
  assert.deepEqual(event.data, { text: body });
  // The provider's retry of the same body is the same event.
  const again = await gw.request("POST", `/v1/webhooks/${T}/whatsapp`, { body, headers: { "content-type": "application/json", ...sign.whatsapp(S.whatsapp, body) } });
  assert.equal(again.body.duplicates, 1);
});

test("no secret reached a log line", () => {
  assert.deepEqual(gw.leaks(), []);
});

test("when the consumer itself keeps failing, the event reaches the dead-letter queue and is recorded", async () => {
  // A destination secret that does not open for this tenant (copied from another tenant's
  // record): every delivery attempt fails inside the gateway, not at the destination.
  await gw.tenant("broken", { destination: { url: dest.url, secret: DEST_SECRET } });
  await gw.admin("PUT", "broken/sources/gh", { kind: "github", secrets: [S.github] });
  const kv = await gw.mf.getKVNamespace("CONFIG");
  const victim = JSON.parse(await kv.get(`destination:${T}:default`));
  const broken = JSON.parse(await kv.get("destination:broken:default"));
  broken.secret = victim.secret;
  await kv.put("destination:broken:default", JSON.stringify(broken));
  const delivery = uid();
  const body = JSON.stringify({ action: "created", comment: { id: 1 } });
  const r = await gw.request("POST", "/v1/webhooks/broken/gh", { body, headers: { "content-type": "application/json", ...sign.github(S.github, body, { event: "issue_comment", delivery }) } });
  assert.equal(r.status, 200, r.text);
  const id = evtId("broken", "gh", bodyId(body));
  const letter = await deadLetter("broken", id, 60000);
  assert.ok(letter, "recorded from the dead-letter queue");
  assert.equal(letter.queue, "events");
  assert.equal(dest.delivered.has(id), false);
  assert.ok(!JSON.stringify(letter).includes(DEST_SECRET));
});

test("a large verified payload (over the queue's 128 KB message limit) is delivered whole", async () => {
  const id = `evt_${uid()}`;
  const body = JSON.stringify({ id, object: "event", type: "invoice.finalized", data: { object: { lines: "x".repeat(400 * 1024) } } });
  const r = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body, headers: { "content-type": "application/json", ...sign.stripe(S.stripe, body) } });
  assert.equal(r.status, 200, r.text);
  const eid = eventId("stripe", id);
  await dest.until(() => dest.delivered.has(eid), 20000, "large delivery");
  const [event] = dest.delivered.get(eid);
  assert.equal(event.data.data.object.lines.length, 400 * 1024);
  assert.ok(dest.attempts.find((a) => a.id === eid).verified);
});
