// Channel send end to end against local servers that speak each provider's API: success,
// degrade, strict 422, limits, idempotent replay, rate limit, circuit breaker, and transient
// failure -> 202 -> delivered by the queue.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startGateway, assertError, planted } from "../harness.mjs";
import { startProviders, providerTokens } from "../mocks/providers.mjs";

const tokens = providerTokens();
for (const t of [tokens.whatsapp, tokens.slack, tokens.telegram, tokens.twilio]) planted.add(t);

let gw, prov, key, other;
before(async () => {
  gw = await startGateway({ extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  prov = await startProviders({ tokens });
  ({ key } = await gw.tenant("sender"));
  other = (await gw.tenant("other")).key;
  const channels = {
    wa: { kind: "whatsapp", base_url: prov.url, phone_number_id: "106540352242922", credentials: { access_token: tokens.whatsapp } },
    sl: { kind: "slack", base_url: prov.url, credentials: { bot_token: tokens.slack } },
    tg: { kind: "telegram", base_url: prov.url, credentials: { bot_token: tokens.telegram } },
    tw: { kind: "twilio", base_url: prov.url, account_sid: tokens.twilioSid, from: "+15017122661", credentials: { auth_token: tokens.twilio } },
    limited: { kind: "telegram", base_url: prov.url, rate_limit_per_minute: 2, credentials: { bot_token: tokens.telegram } },
    fragile: { kind: "slack", base_url: prov.url, circuit_breaker: { failure_threshold: 2, open_seconds: 2, half_open_probes: 1 }, credentials: { bot_token: tokens.slack } },
  };
  for (const [name, doc] of Object.entries(channels)) {
    const r = await gw.admin("PUT", `sender/channels/${name}`, doc);
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => {
  await gw?.stop();
  await prov?.close();
});

const send = (channel, message, headers = {}, k = key) => gw.request("POST", `/v1/channels/${channel}/messages`, { key: k, json: message, headers });
const last = (provider) => prov.of(provider).at(-1);

test("text to each provider: 200 with the provider's message id, in its documented request shape", async () => {
  const wa = await send("wa", { conversation_id: "16505551234", type: "text", text: "Your order shipped" });
  assert.equal(wa.status, 200, wa.text);
  assert.match(wa.body.provider_message_id, /^wamid\.mock/);
  assert.equal(last("whatsapp").path, "/v21.0/106540352242922/messages");
  assert.deepEqual(last("whatsapp").body, { messaging_product: "whatsapp", recipient_type: "individual", to: "16505551234", type: "text", text: { preview_url: false, body: "Your order shipped" } });

  const sl = await send("sl", { conversation_id: "C123ABC456", type: "text", text: "hi", thread_id: "1355517500.000001" });
  assert.equal(sl.status, 200, sl.text);
  assert.match(sl.body.provider_message_id, /^17000000\d+\.000100$/);
  assert.deepEqual(last("slack").body, { channel: "C123ABC456", text: "hi", thread_ts: "1355517500.000001" });

  const tg = await send("tg", { conversation_id: "42", type: "quick_reply", text: "Size?", quick_replies: [{ id: "s", title: "S" }, { id: "l", title: "L" }] });
  assert.equal(tg.status, 200, tg.text);
  assert.equal(last("telegram").path, `/bot${tokens.telegram}/sendMessage`);
  assert.deepEqual(last("telegram").body.reply_markup, { inline_keyboard: [[{ text: "S", callback_data: "s" }], [{ text: "L", callback_data: "l" }]] });

  const tw = await send("tw", { conversation_id: "+15558675310", type: "image", text: "receipt", media: { url: "https://x.example/r.png" } });
  assert.equal(tw.status, 200, tw.text);
  assert.match(tw.body.provider_message_id, /^SM/);
  assert.deepEqual(last("twilio").body, [["To", "+15558675310"], ["From", "+15017122661"], ["MediaUrl", "https://x.example/r.png"], ["Body", "receipt"]]);
});

test("what a provider lacks degrades, or is a 422 with strict; limits are 422 before any provider call", async () => {
  const d = await send("tw", { conversation_id: "+1555", type: "quick_reply", text: "Pick:", quick_replies: [{ id: "a", title: "Track" }, { id: "b", title: "Cancel" }] });
  assert.equal(d.status, 200, d.text);
  assert.deepEqual(d.body.degraded, ["quick_replies as a numbered list"]);
  assert.deepEqual(last("twilio").body.find(([k]) => k === "Body"), ["Body", "Pick:\n1. Track\n2. Cancel"]);
  const before = prov.requests.length;
  const s = await send("sl", { conversation_id: "C1", type: "location", strict: true, location: { latitude: 1, longitude: 2 } });
  assertError(assert, s, 422, "validation_error");
  assert.match(s.body.error.message, /slack cannot send a location/);
  const long = await send("wa", { conversation_id: "1", type: "text", text: "x".repeat(4097) });
  assertError(assert, long, 422, "validation_error");
  assert.match(long.body.error.message, /at most 4096/);
  const title = await send("wa", { conversation_id: "1", type: "quick_reply", text: "Pick", quick_replies: [{ id: "a", title: "This button title is far too long" }] });
  assertError(assert, title, 422, "validation_error");
  assert.equal(prov.requests.length, before, "nothing reached a provider");
});

test("bad requests: unknown channel 404, malformed JSON 400, unknown field 422, no key 401", async () => {
  assertError(assert, await send("nope", { conversation_id: "1", type: "text", text: "x" }), 404, "not_found");
  assertError(assert, await gw.request("POST", "/v1/channels/wa/messages", { key, body: "{", headers: { "content-type": "application/json" } }), 400, "invalid_request");
  const unknown = await send("wa", { conversation_id: "1", type: "text", text: "x", colour: "red" });
  assertError(assert, unknown, 422, "validation_error");
  assert.match(unknown.body.error.message, /colour/);
  assertError(assert, await gw.request("POST", "/v1/channels/wa/messages", { json: { conversation_id: "1", type: "text", text: "x" } }), 401, "authentication_error");
  // Another tenant's key does not reach this tenant's channel.
  assertError(assert, await send("wa", { conversation_id: "1", type: "text", text: "x" }, {}, other), 404, "not_found");
});

test("a provider's refusal is a clear error with its words", async () => {
  prov.behaviour = (r) => (r.provider === "whatsapp" ? { status: 400, body: { error: { message: "(#131030) Recipient phone number not in allowed list", type: "OAuthException", code: 131030, fbtrace_id: "x" } } } : null);
  try {
    const r = await send("wa", { conversation_id: "1", type: "text", text: "x" });
    assertError(assert, r, 422, "validation_error");
    assert.match(r.body.error.message, /whatsapp refused the message: \(#131030\) Recipient phone number not in allowed list/);
  } finally {
    prov.behaviour = () => null;
  }
});

test("a repeated Idempotency-Key returns the first result and sends nothing", async () => {
  const idem = { "idempotency-key": "order-42-" + randomBytes(4).toString("hex") };
  const msg = { conversation_id: "C9", type: "text", text: "once" };
  const first = await send("sl", msg, idem);
  assert.equal(first.status, 200, first.text);
  const count = prov.of("slack").length;
  // The gate records the result just after responding; until then a repeat is told to wait.
  let again;
  for (let i = 0; i < 50; i++) {
    again = await send("sl", msg, idem);
    if (again.status !== 409) break;
    assert.equal(again.body.error.type, "conflict");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(again.status, 200);
  assert.deepEqual(again.body, first.body);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal(prov.of("slack").length, count, "the provider was not called again");
  // Another tenant's identical key is its own.
  const theirs = await send("sl", msg, idem, other);
  assertError(assert, theirs, 404, "not_found");
});

test("the channel's rate limit answers 429 with Retry-After", async () => {
  const m = { conversation_id: "42", type: "text", text: "ping" };
  assert.equal((await send("limited", m)).status, 200);
  assert.equal((await send("limited", m)).status, 200);
  const third = await send("limited", m);
  assertError(assert, third, 429, "rate_limited");
  assert.ok(Number(third.headers.get("retry-after")) >= 1);
});

test("a transient failure is 202 and the deliveries queue sends it; its status is visible", async () => {
  let failed = 0;
  prov.behaviour = (r) => (r.provider === "telegram" && failed++ === 0 ? { status: 503, body: { ok: false, error_code: 503, description: "Service Unavailable" } } : null);
  try {
    const r = await send("tg", { conversation_id: "42", type: "text", text: "eventually" });
    assert.equal(r.status, 202, r.text);
    assert.match(r.body.delivery_id, /^dlv_[0-9a-f]{16}_tg$/);
    let status;
    const end = Date.now() + 20000;
    while (Date.now() < end) {
      status = await gw.request("GET", `/v1/deliveries/${r.body.delivery_id}`, { key });
      if (status.body?.status === "sent") break;
      await new Promise((res) => setTimeout(res, 300));
    }
    assert.equal(status.body.status, "sent", status.text);
    assert.match(status.body.provider_message_id, /^\d+$/);
    assert.equal(status.body.attempts, 2);
    assertError(assert, await gw.request("GET", `/v1/deliveries/${r.body.delivery_id}`, { key: other }), 404, "not_found");
    assertError(assert, await gw.request("GET", "/v1/deliveries/dlv_0000000000000000_tg", { key }), 404, "not_found");
  } finally {
    prov.behaviour = () => null;
  }
});

test("the circuit breaker opens after repeated failures, lets one probe through, and closes", async () => {
  let failing = true;
  prov.behaviour = (r) => (r.provider === "slack" && failing && r.body?.channel === "CFRAGILE" ? { status: 500, body: { ok: false, error: "internal_error" } } : null);
  try {
    const m = { conversation_id: "CFRAGILE", type: "text", text: "x" };
    assert.equal((await send("fragile", m)).status, 202);
    assert.equal((await send("fragile", m)).status, 202);
    // Failures are recorded just after each response: the breaker opens within a few sends.
    let open;
    for (let i = 0; i < 20; i++) {
      open = await send("fragile", m);
      if (open.status === 503) break;
      assert.equal(open.status, 202, open.text);
      await new Promise((r) => setTimeout(r, 100));
    }
    assertError(assert, open, 503, "unavailable");
    assert.match(open.body.error.message, /circuit breaker .* is open/);
    assert.ok(Number(open.headers.get("retry-after")) >= 1);
    failing = false;
    await new Promise((r) => setTimeout(r, 2200));
    const probe = await send("fragile", m);
    assert.equal(probe.status, 200, probe.text);
    // While the probe's success is being recorded the breaker stays half-open (503); then closed.
    let closed;
    for (let i = 0; i < 30; i++) {
      closed = await send("fragile", m);
      if (closed.status === 200) break;
      assert.equal(closed.status, 503, closed.text);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(closed.status, 200, "closed again");
  } finally {
    prov.behaviour = () => null;
  }
});

test("no credential reached a log line", () => {
  assert.deepEqual(gw.leaks(), []);
});
