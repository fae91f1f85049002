// What a third party can do to the gateway, and what it cannot: an answer larger than its cap is a
// 502 in the route's own format (read no further), a body that drips is cut at the exchange's
// deadline, an SSE event that never ends is refused; and a configured URL that points back at the
// gateway ends within a few hops with a 508, whatever hostname it goes through.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { startGateway, assertError, planted } from "../harness.mjs";
import { startHostile } from "../mocks/hostile.mjs";

const TG_TOKEN = "123456:" + randomBytes(12).toString("hex");
planted.add(TG_TOKEN);
let gw, bad, key;

before(async () => {
  gw = await startGateway();
  bad = await startHostile();
  ({ key } = await gw.tenant("edgy"));
  const api = (endpoints, extra = {}) => ({ name: "Hostile", base_url: bad.url, auth: { type: "none" }, endpoints, ...extra });
  const puts = {
    "integrations/hostile": api({ huge: { method: "GET", path: "/huge" }, declared: { method: "GET", path: "/huge-declared" }, drip: { method: "GET", path: "/drip" } }, { timeout_ms: 1500 }),
    "integrations/oauthy": api({ get: { method: "GET", path: "/huge" } }, { auth: { type: "oauth2", grant: "client_credentials", token_url: `${bad.url}/token`, client_id: "c", client_secret: "s" } }),
    "channels/tg": { kind: "telegram", base_url: bad.url, credentials: { bot_token: TG_TOKEN } },
    llm: { providers: { up: { kind: "openai_compatible", base_url: bad.url, api_key: "k-" + randomBytes(6).toString("hex") } }, routes: { huge: [{ provider: "up", model: "huge", retries: 0 }], endless: [{ provider: "up", model: "endless", retries: 0, timeout_ms: 20000 }] } },
  };
  for (const [path, doc] of Object.entries(puts)) {
    const r = await gw.admin("PUT", `edgy/${path}`, doc);
    assert.equal(r.status, 201, `${path}: ${r.text}`);
  }
});
after(async () => {
  await gw?.stop();
  await bad?.close();
});

const run = (id, endpoint) => gw.request("POST", `/v1/integrations/${id}/${endpoint}`, { key, json: {} });

test("an integration answer over 10 MiB is a 502 envelope, streamed or declared", async () => {
  for (const endpoint of ["huge", "declared"]) {
    const r = await run("hostile", endpoint);
    assert.equal(r.status, 502, r.text.slice(0, 300));
    assert.equal(r.body.success, false);
    assert.equal(r.body.error.code, "upstream_error");
    assert.match(r.body.error.message, /larger than the 10 MiB/);
  }
});

test("an integration body that drips after prompt headers is cut at the call's deadline", async () => {
  const started = Date.now();
  const r = await run("hostile", "drip");
  assert.equal(r.status, 504, r.text);
  assert.equal(r.body.error.code, "timeout");
  assert.ok(Date.now() - started < 8000, `answered after ${Date.now() - started} ms`);
});

test("an OAuth token endpoint answering 2 MiB is refused before any call uses it", async () => {
  const before = bad.requests.filter((q) => q.path === "/huge").length;
  const r = await run("oauthy", "get");
  assertError(assert, r, 502, "upstream_error");
  assert.match(r.body.error.message, /token endpoint: answer larger than 1024 KiB/);
  assert.equal(bad.requests.filter((q) => q.path === "/huge").length, before, "the API was not called");
});

test("a channel provider answering 2 MiB is a failed send, not a success", async () => {
  const r = await gw.request("POST", "/v1/channels/tg/messages", { key, json: { conversation_id: "42", type: "text", text: "hi" } });
  assert.ok(r.status >= 500 && r.status < 600, `${r.status} ${r.text}`);
  assert.match(r.text, /larger than 1024 KiB/);
});

test("an LLM answer over 10 MiB is a 502 in the OpenAI format", async () => {
  const client = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  await assert.rejects(client.chat.completions.create({ model: "huge", messages: [{ role: "user", content: "hi" }] }), (e) => {
    assert.equal(e.status, 502);
    assert.match(e.message, /more than 10 MiB/);
    return true;
  });
});

test("an SSE event that grows past 4 MiB in short data lines ends the stream with an error", async () => {
  const res = await fetch(`${gw.url.origin}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "endless", stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(res.status, 200);
  const started = Date.now();
  const text = await res.text();
  assert.match(text, /"content":"Hi"/);
  assert.match(text, /SSE event over 4 MiB/);
  assert.ok(!text.includes("[DONE]"), "a failed stream does not claim to be done");
  assert.ok(Date.now() - started < 15000, "ended by the event cap, not a timeout");
});

test("every outbound request carries the gateway's loop mark", () => {
  assert.ok(bad.requests.length > 0);
  for (const q of bad.requests) assert.equal(q.headers["cdn-loop"], "edge-gateway", `${q.method} ${q.path}`);
});

test("a request that passed through the gateway more than 3 times is refused with 508", async () => {
  const marks = (n) => Array(n).fill("edge-gateway").join(", ");
  assert.equal((await gw.request("GET", "/healthz", { headers: { "cdn-loop": `cloudflare, ${marks(3)}` } })).status, 200);
  const r = await gw.request("GET", "/healthz", { headers: { "cdn-loop": `cloudflare, ${marks(4)}` } });
  assertError(assert, r, 508, "loop_detected");
});

test("an integration whose base_url is the gateway itself ends within a few hops", async () => {
  // The integration calls its own execute route through the gateway: a loop by configuration.
  const doc = { name: "Self", base_url: gw.url.origin, auth: { type: "bearer", token: key }, endpoints: { again: { method: "POST", path: "/v1/integrations/selfie/again", body: {} } } };
  assert.equal((await gw.admin("PUT", "edgy/integrations/selfie", doc)).status, 201);
  const before = gw.logs.length;
  const r = await run("selfie", "again");
  assert.equal(r.status, 502, r.text);
  const lines = gw.logs.slice(before).map((l) => l.message).filter((m) => m.includes('"route"'));
  const hits = lines.filter((m) => m.includes(`"route":"/v1/integrations/{id}/{endpoint}"`)).length;
  const loops = lines.filter((m) => m.includes('"route":"loop"')).length;
  assert.equal(loops, 1, "one refusal ends the loop");
  assert.equal(hits, 4, "the client's call and three hops");
});
