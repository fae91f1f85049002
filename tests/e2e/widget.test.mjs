// The widget's API end to end: the script and its caching, CORS preflight and origin checks,
// streamed answers with conversation context kept in a Durable Object, per-visitor rate limit,
// a tenant's own chat service, and keys that must not work where they do not belong.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { gzipSync } from "node:zlib";
import { startGateway, assertError } from "../harness.mjs";

const ORIGIN = "https://shop.example.com";
let gw, pk, sk, svc, svcPk, otherPk;

before(async () => {
  gw = await startGateway({ extraBindings: { MOCK_STREAM_DELAY_MS: "0" } });
  ({ key: sk } = await gw.tenant("shop", {
    allowed_origins: [ORIGIN],
    limits: { widget_rpm_per_visitor: 3 },
    assistant: { system_prompt: "You are the Shop assistant.", model: "default" },
    widget: { title: "Shop help", color: "#007a5a", greeting: "Hello there", position: "bottom-left" },
  }));
  assert.equal((await gw.admin("PUT", "shop/llm", { providers: { mock: { kind: "mock" } }, routes: { default: [{ provider: "mock", model: "mock-echo" }] } })).status, 201);
  pk = (await gw.admin("POST", "shop/widget-keys")).body.key;
  // A tenant whose widget is answered by its own chat service.
  svc = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const j = JSON.parse(body);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ reply: `Service got "${j.message}" after ${j.history.length} turns`, quick_replies: ["Yes", "No"] }));
    });
  });
  await new Promise((r) => svc.listen(0, "127.0.0.1", r));
  await gw.tenant("svc", { allowed_origins: [ORIGIN], assistant: { chat_url: `http://127.0.0.1:${svc.address().port}/chat` } });
  svcPk = (await gw.admin("POST", "svc/widget-keys")).body.key;
  await gw.tenant("other", { allowed_origins: ["https://other.example.com"] });
  otherPk = (await gw.admin("POST", "other/widget-keys")).body.key;
});
after(async () => {
  await gw?.stop();
  svc?.close();
});

const chat = (key, body, { origin = ORIGIN, visitor = "v1" } = {}) =>
  gw.request("POST", `/v1/widget/chat?key=${key}`, { json: body, headers: { ...(origin ? { origin } : {}), "x-visitor-id": visitor } });
const text = (sse) => sse.split("\n\n").filter((b) => b.startsWith("data: {")).map((b) => JSON.parse(b.slice(6)).choices?.[0]?.delta?.content ?? "").join("");

test("widget.js: small, cacheable, revalidated by its content hash", async () => {
  const r = await gw.request("GET", "/widget.js");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /javascript/);
  assert.match(r.headers.get("cache-control"), /max-age=\d+/);
  const etag = r.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  assert.ok(gzipSync(r.text).length < 20 * 1024, "under the 20 KB gzipped budget");
  const again = await gw.request("GET", "/widget.js", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  const demo = await gw.request("GET", "/demo");
  assert.equal(demo.status, 200);
  assert.match(demo.text, /data-key="pk_dev_demo_local_only_0000000000"/);
});

test("CORS preflight: allowed origin answered, others refused without CORS headers", async () => {
  const ok = await gw.request("OPTIONS", `/v1/widget/chat?key=${pk}`, { headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-visitor-id" } });
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get("access-control-allow-origin"), ORIGIN);
  assert.match(ok.headers.get("access-control-allow-headers"), /x-visitor-id/);
  const evil = await gw.request("OPTIONS", `/v1/widget/chat?key=${pk}`, { headers: { origin: "https://evil.example.net" } });
  assertError(assert, evil, 403, "permission_denied");
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  const lookalike = await gw.request("OPTIONS", `/v1/widget/chat?key=${pk}`, { headers: { origin: "https://shop.example.com.evil.net" } });
  assert.equal(lookalike.status, 403);
  const nokey = await gw.request("OPTIONS", "/v1/widget/chat", { headers: { origin: ORIGIN } });
  assertError(assert, nokey, 401, "authentication_error");
});

test("chat streams the answer and keeps the conversation's context", async () => {
  const first = await chat(pk, { message: "Where is my order?" });
  assert.equal(first.status, 200, first.text);
  assert.match(first.headers.get("content-type"), /text\/event-stream/);
  assert.equal(first.headers.get("access-control-allow-origin"), ORIGIN);
  const id = first.headers.get("x-conversation-id");
  assert.match(id, /^[0-9a-f]{64}$/);
  // The mock answers with the turn count: system + user = 2.
  assert.match(text(first.text), /You said: "Where is my order\?". This is turn 2/);
  assert.match(text(first.text), /\[\[Track my order \| Talk to a human\]\]/);
  const second = await chat(pk, { message: "And the invoice?", conversation_id: id });
  assert.equal(second.headers.get("x-conversation-id"), id);
  assert.match(text(second.text), /This is turn 4/, "the first exchange was sent along");
  const history = await gw.request("GET", `/v1/widget/conversations/${id}?key=${pk}`, { headers: { origin: ORIGIN } });
  assert.equal(history.status, 200);
  assert.deepEqual(history.body.messages.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
  assert.equal(history.body.messages[2].content, "And the invoice?");
  // The id was issued to this tenant: through another tenant's key it is no id at all, and a
  // well-formed id the gateway never issued is refused before any state is touched.
  const foreign = await gw.request("GET", `/v1/widget/conversations/${id}?key=${otherPk}`);
  assertError(assert, foreign, 404, "not_found");
  const made_up = "ab".repeat(32);
  assertError(assert, await gw.request("GET", `/v1/widget/conversations/${made_up}?key=${pk}`, { headers: { origin: ORIGIN } }), 404, "not_found");
  assertError(assert, await chat(pk, { message: "x", conversation_id: made_up }), 400, "invalid_request");
});

test("disallowed or missing origins cannot chat", async () => {
  const evil = await chat(pk, { message: "hi" }, { origin: "https://evil.example.net" });
  assertError(assert, evil, 403, "permission_denied");
  assert.equal(evil.headers.get("access-control-allow-origin"), null);
  const none = await chat(pk, { message: "hi" }, { origin: null });
  assertError(assert, none, 403, "permission_denied");
});

test("per-visitor rate limit: a visitor is refused after its limit, others are not", async () => {
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await chat(pk, { message: `m${i}` }, { visitor: "busy" })).status);
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  const limited = await chat(pk, { message: "again" }, { visitor: "busy" });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("access-control-allow-origin"), ORIGIN, "the widget can read the 429");
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  assert.equal((await chat(pk, { message: "hi" }, { visitor: "calm" })).status, 200);
});

test("a tenant's own chat service answers instead of a model, with quick replies", async () => {
  const r = await chat(svcPk, { message: "Hi" });
  assert.equal(r.status, 200, r.text);
  assert.equal(text(r.text), 'Service got "Hi" after 0 turns\n[[Yes | No]]');
  const r2 = await chat(svcPk, { message: "Again", conversation_id: r.headers.get("x-conversation-id") });
  assert.match(text(r2.text), /after 2 turns/);
});

test("bad input and misplaced keys", async () => {
  assertError(assert, await chat(pk, { message: "" }), 400, "invalid_request");
  assertError(assert, await chat(pk, { message: "x", conversation_id: "../../etc" }), 400, "invalid_request");
  assertError(assert, await gw.request("POST", `/v1/widget/chat?key=${pk}`, { body: "{oops", headers: { origin: ORIGIN, "content-type": "application/json" } }), 400, "invalid_request");
  assertError(assert, await chat(sk, { message: "x" }), 401, "authentication_error");
  assertError(assert, await chat("pk_not_a_real_key_00000000", { message: "x" }), 401, "authentication_error");
  // A publishable key cannot call the LLM proxy or any API route.
  const llm = await gw.request("POST", "/v1/chat/completions", { key: pk, json: { model: "default", messages: [{ role: "user", content: "x" }] } });
  assert.equal(llm.status, 403);
  const cfg = await gw.request("GET", `/v1/widget/config?key=${pk}`, { headers: { origin: ORIGIN } });
  assert.deepEqual(cfg.body, { title: "Shop help", greeting: "Hello there", color: "#007a5a", position: "bottom-left" });
});
