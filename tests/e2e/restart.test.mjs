// State survives a restart: the worker runs with persisted KV and Durable Objects, is stopped in
// the middle of a run and started again. Rate-limit counts, breaker states, dedupe ids, dead
// letters and queued work (events waiting for a retry, queued channel sends) are all still there.
// Miniflare's queues live in memory, so the queued copies die with the runtime: the open-work
// records (Dedupe for events, Outbox for sends) send them again, which is what this shows.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { startGateway, planted, ROOT } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startProviders } from "../mocks/providers.mjs";
import { sign } from "../signers.mjs";
import { eventId } from "../samples.mjs";

const T = "durable";
const DEST = "whsec_" + randomBytes(32).toString("base64");
const STRIPE = "whsec_" + randomBytes(12).toString("hex");
const TG = "42:" + randomBytes(12).toString("hex");
for (const s of [DEST, STRIPE, TG]) planted.add(s);

let gw, dest, prov, up, key, dir;
let healed = false;
before(async () => {
  dir = mkdtempSync(path.join(ROOT, "target", "persist-"));
  gw = await startGateway({ persist: dir, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1", REDELIVERY_GRACE_SECONDS: "2", MOCK_STREAM_DELAY_MS: "0" } });
  dest = await startDestination(DEST);
  // Refunds are refused for good (dead letters); everything else fails until healed.
  dest.behaviour = (_, event) => (event.type === "stripe.charge.refunded" ? { status: 410 } : healed ? { status: 200 } : { status: 503 });
  prov = await startProviders({ tokens: { telegram: TG } });
  prov.behaviour = (e) => (!healed && String(e.mark).startsWith("q-") ? { status: 500, body: { ok: false, description: "down" } } : null);
  up = { calls: 0 };
  up.server = http.createServer((req, res) => { up.calls++; req.resume(); req.on("end", () => { res.writeHead(500); res.end("{}"); }); });
  await new Promise((r) => up.server.listen(0, "127.0.0.1", r));
  ({ key } = await gw.tenant(T, { destination: { url: dest.url, secret: DEST, timeout_ms: 500 }, limits: { rpm: 3, max_delivery_attempts: 20 } }));
  const put = async (p, doc) => assert.equal((await gw.admin("PUT", `${T}/${p}`, doc)).status, 201, p);
  await put("sources/stripe", { kind: "stripe", secrets: [STRIPE] });
  await put("channels/limited", { kind: "telegram", base_url: prov.url, rate_limit_per_minute: 5, credentials: { bot_token: TG } });
  await put("channels/q", { kind: "telegram", base_url: prov.url, credentials: { bot_token: TG } });
  await put("integrations/fragile", { name: "F", base_url: `http://127.0.0.1:${up.server.address().port}`, retry: { max_retries: 0 }, circuit_breaker: { failure_threshold: 2, open_seconds: 600 }, endpoints: { ping: { method: "GET", path: "/" } } });
  await put("llm", { providers: { mock: { kind: "mock" } }, routes: { default: [{ provider: "mock", model: "mock-echo" }] } });
});
after(async () => {
  await gw?.stop();
  await dest?.close();
  await prov?.close();
  up?.server.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const hook = (type, id = `evt_${randomBytes(6).toString("hex")}`) => {
  const body = JSON.stringify({ id, object: "event", type, data: { object: { id: "ch_1" } } });
  return { id, body, send: () => gw.request("POST", `/v1/webhooks/${T}/stripe`, { body, headers: { "content-type": "application/json", ...sign.stripe(STRIPE, body) } }) };
};
const send = (channel, text) => gw.request("POST", `/v1/channels/${channel}/messages`, { key, json: { conversation_id: "7", type: "text", text } });
const llm = () => gw.request("POST", "/v1/chat/completions", { key, json: { model: "default", messages: [{ role: "user", content: "hi" }] } });
const fragile = () => gw.request("POST", "/v1/integrations/fragile/ping", { key, json: { input: {} } });
async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("a restart in the middle of a run keeps limits, breakers, dedupe ids, dead letters and queued work", { timeout: 120_000 }, async () => {
  // Before: spend part of each limit, open a breaker, accept events that cannot be delivered yet,
  // queue sends the provider refuses, and dead-letter one event.
  for (let i = 0; i < 3; i++) assert.equal((await send("limited", `l-${i}`)).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await llm()).status, 200);
  assert.equal((await fragile()).status, 502);
  assert.equal((await fragile()).status, 502);
  assert.equal((await fragile()).status, 503, "breaker open");
  const first = hook("charge.succeeded");
  assert.equal((await first.send()).body.duplicates, 0);
  const waiting = [first, ...Array.from({ length: 5 }, () => hook("charge.succeeded"))];
  for (const h of waiting.slice(1)) assert.equal((await h.send()).status, 200);
  const refund = hook("charge.refunded");
  assert.equal((await refund.send()).status, 200);
  const queued = [];
  for (let i = 0; i < 3; i++) {
    const r = await send("q", `q-${i}`);
    assert.equal(r.status, 202, r.text);
    queued.push(r.body.delivery_id);
  }
  const ids = waiting.map((h) => eventId(T, "stripe", h.id));
  await until(() => ids.every((id) => dest.attempts.some((a) => a.id === id)), 15000, "a first failed attempt of every event");
  const refundId = eventId(T, "stripe", refund.id);
  await until(async () => (await gw.admin("GET", `${T}/dead-letters`)).body.data.some((l) => l.id === refundId), 15000, "the dead letter");

  await gw.restart();
  healed = true;
  const upCalls = up.calls;

  // Limits: what was spent stays spent.
  for (let i = 3; i < 5; i++) assert.equal((await send("limited", `l-${i}`)).status, 200);
  assert.equal((await send("limited", "l-5")).status, 429, "5 per minute, 3 spent before the restart");
  assert.equal((await llm()).status, 200);
  assert.equal((await llm()).status, 429, "rpm 3, 2 spent before the restart");
  // The breaker is still open: refused without calling the upstream.
  assert.equal((await fragile()).status, 503);
  assert.equal(up.calls, upCalls);
  // Dedupe ids: the provider's redelivery of an accepted event is recognised.
  const again = await gw.request("POST", `/v1/webhooks/${T}/stripe`, { body: first.body, headers: { "content-type": "application/json", ...sign.stripe(STRIPE, first.body) } });
  assert.equal(again.body.duplicates, 1);
  // Dead letters are still recorded, and replay delivers... the refusal again (410), so just listed.
  assert.ok((await gw.admin("GET", `${T}/dead-letters`)).body.data.some((l) => l.id === refundId));
  // Queued work: every waiting event and every queued send is delivered once the far ends heal.
  await until(() => ids.every((id) => dest.delivered.has(id)), 45000, "every waiting event delivered after the restart");
  await until(() => ["q-0", "q-1", "q-2"].every((m) => prov.requests.some((r) => r.mark === m && r.ok)), 45000, "every queued send sent after the restart");
  for (const id of queued) {
    await until(async () => (await gw.request("GET", `/v1/deliveries/${id}`, { key })).body.status === "sent", 10000, `delivery ${id} shown as sent`);
  }
  const resent = gw.logs.filter((l) => l.message.includes("outbox_resent")).length;
  assert.ok(resent > 0, "the outbox sent the lost queue copies again");
  assert.ok(dest.attempts.every((a) => a.verified));
});
