// Exactness under concurrency: limits and breakers are decided in one Durable Object per tenant
// resource, so a burst of concurrent requests can neither overshoot a limit nor open a breaker twice
// nor let more half-open probes through than configured.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import { startGateway, planted } from "../harness.mjs";
import { startProviders } from "../mocks/providers.mjs";

/** An upstream whose answer (status, delay) is switchable; counts the calls it gets. */
async function startUpstream() {
  const up = { calls: 0, status: 200, delayMs: 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      up.calls++;
      setTimeout(() => {
        res.writeHead(up.status, { "content-type": "application/json" });
        res.end(JSON.stringify({ ok: up.status < 300 }));
      }, up.delayMs);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  up.url = `http://127.0.0.1:${server.address().port}`;
  up.close = () => new Promise((r) => server.close(r));
  return up;
}

const tgToken = "123456:" + randomBytes(12).toString("hex");
planted.add(tgToken);
let gw, up, prov, key;
before(async () => {
  gw = await startGateway();
  up = await startUpstream();
  prov = await startProviders({ tokens: { telegram: tgToken } });
  ({ key } = await gw.tenant("exact", { limits: { rpm: 50, tpm: 10_000_000 } }));
  const put = async (p, doc) => assert.equal((await gw.admin("PUT", `exact/${p}`, doc)).status, 201);
  await put("channels/tg", { kind: "telegram", base_url: prov.url, rate_limit_per_minute: 50, credentials: { bot_token: tgToken } });
  await put("integrations/limited", { name: "Limited", base_url: up.url, rate_limit: { per_minute: 50 }, endpoints: { ping: { method: "GET", path: "/ping" } } });
  await put("integrations/daily", { name: "Daily", base_url: up.url, rate_limit: { per_minute: 1000, per_day: 30 }, endpoints: { ping: { method: "GET", path: "/ping" } } });
  await put("integrations/fragile", {
    name: "Fragile", base_url: up.url, timeout_ms: 2000, retry: { max_retries: 0 },
    circuit_breaker: { minimum_calls: 5, failure_rate: 0.5, window_seconds: 60, open_seconds: 2, half_open_probes: 3 },
    endpoints: { ping: { method: "GET", path: "/ping" } },
  });
  await put("llm", { providers: { mock: { kind: "mock" } }, routes: { default: [{ provider: "mock", model: "mock-echo" }] } });
});
after(async () => {
  await gw?.stop();
  await up?.close();
  await prov?.close();
});

const burst = (n, fn) => Promise.all(Array.from({ length: n }, (_, i) => fn(i)));
const count = (rs) => rs.reduce((m, r) => ((m[r.status] = (m[r.status] ?? 0) + 1), m), {});

test("200 concurrent channel sends against 50 per minute: exactly 50 sent, 150 refused with 429", async () => {
  const before = prov.of("telegram").length;
  const rs = await burst(200, (i) => gw.request("POST", "/v1/channels/tg/messages", { key, json: { conversation_id: "42", type: "text", text: `n${i}` } }));
  assert.deepEqual(count(rs), { 200: 50, 429: 150 });
  assert.equal(prov.of("telegram").length - before, 50, "exactly 50 reached the provider");
  assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.headers.get("retry-after")) >= 1));
});

test("200 concurrent integration calls against 50 per minute: exactly 50 reach the upstream", async () => {
  up.status = 200;
  const before = up.calls;
  const rs = await burst(200, () => gw.request("POST", "/v1/integrations/limited/ping", { key, json: { input: {} } }));
  assert.deepEqual(count(rs), { 200: 50, 429: 150 });
  assert.equal(up.calls - before, 50);
});

test("60 concurrent integration calls against 30 a day (1000 a minute): exactly 30 reach the upstream, the rest wait for the day", async () => {
  up.status = 200;
  const before = up.calls;
  const rs = await burst(60, () => gw.request("POST", "/v1/integrations/daily/ping", { key, json: { input: {} } }));
  assert.deepEqual(count(rs), { 200: 30, 429: 30 });
  assert.equal(up.calls - before, 30);
  // The day's window, not the minute's, refused them: they are told to come back much later.
  assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.headers.get("retry-after")) > 60));
  const later = await gw.request("POST", "/v1/integrations/daily/ping", { key, json: { input: {} } });
  assert.equal(later.status, 429, "still refused: the day is not over");
});

test("200 concurrent LLM requests against rpm 50: exactly 50 answered", async () => {
  const rs = await burst(200, () => gw.request("POST", "/v1/chat/completions", { key, json: { model: "default", messages: [{ role: "user", content: "hi" }] } }));
  assert.deepEqual(count(rs), { 200: 50, 429: 150 });
});

test("a breaker under concurrent failures opens once; half-open lets exactly the configured 3 probes through", async () => {
  const opened = () => gw.logs.filter((l) => l.message.includes('"breaker"') && l.message.includes("exact:integration:fragile"));
  up.status = 500;
  up.delayMs = 150;
  // 40 concurrent calls to a failing upstream: all admitted while closed fail, and once 5 have
  // (the minimum of calls, all failed) it opens, once.
  const first = await burst(40, () => gw.request("POST", "/v1/integrations/fragile/ping", { key, json: { input: {} } }));
  const failedUpstream = first.filter((r) => r.status === 502).length;
  assert.ok(failedUpstream >= 5, `at least the minimum of calls reached the upstream: ${JSON.stringify(count(first))}`);
  assert.equal(failedUpstream + first.filter((r) => r.status === 503).length, 40);
  await gw.waitForLog((m) => m.includes('"opened"') && m.includes("exact:integration:fragile"));
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(opened().map((l) => JSON.parse(l.message).breaker), ["opened"], "opened exactly once");

  // While open: refused without an upstream call.
  let calls = up.calls;
  const refused = await gw.request("POST", "/v1/integrations/fragile/ping", { key, json: { input: {} } });
  assert.equal(refused.status, 503);
  assert.equal(up.calls, calls);

  /** Waits out the open period, then sends 30 concurrent calls: exactly 3 probes reach the upstream. */
  const halfOpenRound = async (probeStatus, transitions) => {
    await new Promise((r) => setTimeout(r, 2100));
    const before = up.calls;
    const rs = await burst(30, () => gw.request("POST", "/v1/integrations/fragile/ping", { key, json: { input: {} } }));
    assert.deepEqual(count(rs), { [probeStatus]: 3, 503: 27 });
    assert.equal(up.calls - before, 3);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(opened().map((l) => JSON.parse(l.message).breaker), transitions);
  };
  // Still failing: the probes fail, one reopening.
  await halfOpenRound(502, ["opened", "reopened"]);
  // Healed: the first probe's success closes it.
  up.status = 200;
  await halfOpenRound(200, ["opened", "reopened", "closed"]);
  const after = await gw.request("POST", "/v1/integrations/fragile/ping", { key, json: { input: {} } });
  assert.equal(after.status, 200, "closed: calls flow again");
  up.delayMs = 0;
});
