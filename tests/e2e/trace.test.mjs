// W3C trace context: a request that arrives with `traceparent` stays in its trace, and every kind
// of request the gateway sends for it (an LLM provider, an integration and its token endpoint, a
// channel's provider, a tenant's webhook destination through the queue, a widget's chat service)
// carries the same trace id with the gateway's span as the parent; the log line names the trace.
// A request without one starts a trace.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { startGateway, planted } from "../harness.mjs";
import { startProviders, providerTokens } from "../mocks/providers.mjs";
import { sourceSecrets, sourceDoc, sample } from "../samples.mjs";

const T = "traced";
const ORIGIN = "https://shop.example.com";
const DEST_SECRET = "whsec_" + randomBytes(32).toString("base64");
const CLIENT_SECRET = "client-secret-" + randomBytes(8).toString("hex");
const S = sourceSecrets();
const tokens = providerTokens();
for (const s of [DEST_SECRET, CLIENT_SECRET, S.standard, ...Object.values(tokens)]) planted.add(s);
let gw, prov, key, pk;

/** Every request the stand-in got: {path, headers}. It answers as each upstream would. */
const seen = [];
const upstream = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    seen.push({ path: req.url, headers: req.headers });
    const json = (v) => (res.writeHead(200, { "content-type": "application/json" }), res.end(JSON.stringify(v)));
    if (req.url === "/v1/chat/completions")
      return json({ id: "chatcmpl-1", object: "chat.completion", created: 1, model: "m", choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } });
    if (req.url === "/oauth/token") return json({ access_token: "at-" + randomBytes(4).toString("hex"), token_type: "Bearer", expires_in: 3600 });
    if (req.url.startsWith("/api/")) return json({ ok: true, contact: { name: "Ada" } });
    if (req.url === "/chat") return json({ reply: "from the service" });
    res.writeHead(200).end(); // the destination
  });
});

before(async () => {
  await new Promise((r) => upstream.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${upstream.address().port}`;
  gw = await startGateway({ seed: false });
  prov = await startProviders({ tokens });
  ({ key } = await gw.tenant(T, {
    destination: { url: `${base}/hook`, secret: DEST_SECRET },
    allowed_origins: [ORIGIN],
    assistant: { chat_url: `${base}/chat` },
  }));
  const put = async (path, doc) => assert.equal((await gw.admin("PUT", `${T}/${path}`, doc)).status, 201);
  await put("llm", { providers: { up: { kind: "openai_compatible", base_url: `${base}/v1` } }, routes: { default: [{ provider: "up", model: "m" }] } });
  const auth = { type: "oauth2", grant: "client_credentials", token_url: `${base}/oauth/token`, client_id: "gw", client_secret: CLIENT_SECRET };
  await put("integrations/crm", { name: "CRM", base_url: `${base}/api`, auth, endpoints: { get: { method: "GET", path: "/contacts/1", response: { success_path: "ok", data_path: "contact" } } } });
  await put("channels/tg", { kind: "telegram", base_url: prov.url, credentials: { bot_token: tokens.telegram } });
  await put("sources/standard", sourceDoc(T, "standard", S.standard));
  pk = (await gw.admin("POST", `${T}/widget-keys`)).body.key;
});
after(async () => {
  await gw?.stop();
  await prov?.close();
  await new Promise((r) => upstream.close(r));
});

const traceId = () => randomBytes(16).toString("hex");
const traceparent = (id) => `00-${id}-${randomBytes(8).toString("hex")}-01`;
const childOf = (id) => new RegExp(`^00-${id}-[0-9a-f]{16}-01$`);

test("every kind of upstream gets the caller's trace, with the gateway's span as the parent", async () => {
  const id = traceId();
  const parent = traceparent(id);
  const h = { traceparent: parent, tracestate: "vendor=abc" };
  const calls = [
    gw.request("POST", "/v1/chat/completions", { key, headers: h, json: { model: "default", messages: [{ role: "user", content: "hi" }] } }),
    gw.request("POST", "/v1/integrations/crm/get", { key, headers: h, json: { input: {} } }),
    gw.request("POST", "/v1/channels/tg/messages", { key, headers: h, json: { conversation_id: "123456789", type: "text", text: "traced" } }),
    gw.request("POST", `/v1/widget/chat?key=${pk}`, { headers: { ...h, origin: ORIGIN, "x-visitor-id": "v-" + randomBytes(4).toString("hex") }, json: { message: "hi" } }),
  ];
  const s = sample(T, S, "standard");
  calls.push(gw.request("POST", `/v1/webhooks/${T}/standard`, { body: s.body, headers: { "content-type": "application/json", ...s.headers, ...h } }));
  for (const r of await Promise.all(calls)) assert.ok(r.status < 300, `${r.status} ${r.text}`);
  // The destination gets the event from the queue, after the response.
  for (let i = 0; i < 100 && !seen.some((r) => r.path === "/hook"); i++) await new Promise((r) => setTimeout(r, 50));
  const got = (path) => seen.filter((r) => r.path === path);
  const kinds = {
    provider: got("/v1/chat/completions"),
    "token endpoint": got("/oauth/token"),
    integration: got("/api/contacts/1"),
    "chat service": got("/chat"),
    destination: got("/hook"),
    channel: prov.requests.filter((r) => r.provider === "telegram"),
  };
  for (const [kind, requests] of Object.entries(kinds)) {
    assert.ok(requests.length > 0, `${kind}: reached`);
    for (const r of requests) {
      assert.match(r.headers.traceparent ?? "", childOf(id), `${kind}: ${r.headers.traceparent}`);
      assert.notEqual(r.headers.traceparent, parent, `${kind}: the gateway's own span`);
      assert.equal(r.headers.tracestate, "vendor=abc", kind);
    }
  }
  const lines = gw.logs.filter((l) => l.message.includes(`"trace_id":"${id}"`));
  for (const route of ["/v1/chat/completions", "/v1/integrations/{id}/{endpoint}", "/v1/channels/{channel}/messages", "/v1/widget/chat"])
    assert.ok(lines.some((l) => l.message.includes(`"route":"${route}"`)), `the log line of ${route} names the trace`);
});

test("a request without a valid traceparent starts a trace of its own", async () => {
  const before = seen.length;
  for (const headers of [{}, { traceparent: "00-not-a-trace-01", tracestate: "vendor=abc" }]) {
    const r = await gw.request("POST", "/v1/chat/completions", { key, headers, json: { model: "default", messages: [{ role: "user", content: "hi" }] } });
    assert.equal(r.status, 200, r.text);
  }
  const sent = seen.slice(before).map((r) => r.headers);
  assert.equal(sent.length, 2);
  const ids = sent.map((h) => /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(h.traceparent)?.[1]);
  assert.ok(ids.every(Boolean) && ids[0] !== ids[1], JSON.stringify(ids));
  assert.ok(sent.every((h) => h.tracestate === undefined), "a caller's state is not kept without its trace");
});
