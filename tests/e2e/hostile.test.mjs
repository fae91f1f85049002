// Malformed and hostile requests across every route, table-driven: each gets a 4xx in its route's
// error format (or, for a broken upstream, the documented 502/504 or an in-stream error event),
// never a 500, a panic or a hung request, and none of them changes anything.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { startGateway, ADMIN_TOKEN, planted } from "../harness.mjs";
import { startLlm, BROKEN } from "../mocks/llm.mjs";
import { startProviders } from "../mocks/providers.mjs";
import { KINDS, sourceSecrets, sourceDoc, sample, resign } from "../samples.mjs";
import { sign } from "../signers.mjs";

const T = "hostile";
const ORIGIN = "https://shop.example.com";
const OPENAI_KEY = "sk-up-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-up-" + randomBytes(8).toString("hex");
const TG = "123:" + randomBytes(10).toString("hex");
const S = sourceSecrets();
for (const s of [OPENAI_KEY, ANTHROPIC_KEY, TG, ...Object.values(S)]) planted.add(s);

let gw, key, pk, llm, prov, up;
const upstreamSeen = [];
before(async () => {
  gw = await startGateway({ extraBindings: { MOCK_STREAM_DELAY_MS: "0" } });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  prov = await startProviders({ tokens: { telegram: TG } });
  up = http.createServer((req, res) => {
    upstreamSeen.push({ url: req.url, headers: req.headers });
    req.resume();
    req.on("end", () => { res.writeHead(200, { "content-type": "application/json" }); res.end('{"ok":true,"data":{"id":1}}'); });
  });
  await new Promise((r) => up.listen(0, "127.0.0.1", r));
  ({ key } = await gw.tenant(T, { allowed_origins: [ORIGIN], assistant: { model: "echo" } }));
  const put = async (p, doc) => { const r = await gw.admin("PUT", `${T}/${p}`, doc); assert.equal(r.status, 201, `${p}: ${r.text}`); };
  for (const kind of KINDS) await put(`sources/${kind}`, sourceDoc(T, kind, S[kind], "verify-me"));
  await put("channels/tg", { kind: "telegram", base_url: prov.url, credentials: { bot_token: TG } });
  await put("integrations/crm", {
    name: "CRM", base_url: `http://127.0.0.1:${up.address().port}/api`,
    endpoints: { lookup: {
      method: "POST", path: "/contacts/{contact_id}", headers: { "X-Customer": "input.name" }, query: { q: "input.name" },
      body: { email: "{{input.email}}" },
      input_schema: { contact_id: { type: "string", required: true }, name: { type: "string" }, email: { type: "string" }, n: { type: "integer", min: 0, max: 100 } },
      response: { success_path: "ok", data_path: "data" } } },
  });
  const routes = { echo: [{ provider: "mock", model: "mock-echo" }] };
  for (const m of Object.keys(BROKEN)) {
    routes[`oai-${m}`] = [{ provider: "oai", model: m, retries: 0, timeout_ms: 1500 }];
    routes[`ant-${m}`] = [{ provider: "claude", model: m, retries: 0, timeout_ms: 1500 }];
  }
  await put("llm", { providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY }, claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY }, mock: { kind: "mock" } }, routes });
  pk = (await gw.admin("POST", `${T}/widget-keys`)).body.key;
});
after(async () => {
  await gw?.stop();
  await llm?.close();
  await prov?.close();
  up?.close();
});

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
const json = { "content-type": "application/json" };
const auth = () => ({ authorization: `Bearer ${key}` });
const deep = (n) => "[".repeat(n) + "]".repeat(n);
const A = "/v1/admin/tenants";

// The JSON routes, each with a valid body that the mutations below break.
// `num`: where a number goes in that body (its literal is spliced in verbatim).
const jsonRoutes = () => [
  ["admin: tenant", "PUT", `${A}/x1`, admin, { name: "a", limits: { rpm: 5 } }, (b) => ({ ...b, limits: { rpm: NUM } })],
  ["admin: source", "PUT", `${A}/${T}/sources/s-new`, admin, { kind: "stripe", secrets: ["whsec_x"] }, (b) => ({ ...b, dedupe_window_seconds: NUM })],
  ["admin: channel", "PUT", `${A}/${T}/channels/c-new`, admin, { kind: "telegram", credentials: { bot_token: "1:x" } }, (b) => ({ ...b, rate_limit_per_minute: NUM })],
  ["admin: integration", "PUT", `${A}/${T}/integrations/i-new`, admin, { name: "n", base_url: "https://x.example.com", endpoints: { e: { method: "GET", path: "/" } } }, (b) => ({ ...b, timeout_ms: NUM })],
  ["admin: llm", "PUT", `${A}/${T}/llm`, admin, { providers: { m: { kind: "mock" } }, routes: { d: [{ provider: "m", model: "x" }] } }, (b) => ({ ...b, routes: { d: [{ provider: "m", model: "x", timeout_ms: NUM }] } })],
  ["admin: key", "POST", `${A}/${T}/keys`, admin, { scopes: ["llm"] }, () => ({ scopes: NUM })],
  ["channel send", "POST", "/v1/channels/tg/messages", auth(), { conversation_id: "1", type: "text", text: "hi" }, (b) => ({ ...b, conversation_id: NUM })],
  ["integration call", "POST", "/v1/integrations/crm/lookup", auth(), { input: { contact_id: "c1", name: "n" } }, () => ({ input: { contact_id: "c1", n: NUM } })],
  ["integration install", "POST", "/v1/integrations", auth(), { template: "rest", id: "inst-new", settings: { base_url: "https://x.example.com" } }, (b) => ({ ...b, id: NUM })],
  ["chat completions", "POST", "/v1/chat/completions", auth(), { model: "echo", messages: [{ role: "user", content: "hi" }] }, (b) => ({ ...b, max_tokens: NUM })],
  ["messages", "POST", "/v1/messages", { ...auth(), "anthropic-version": "2023-06-01" }, { model: "echo", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }, (b) => ({ ...b, max_tokens: NUM })],
  ["widget chat", "POST", `/v1/widget/chat?key=PK`, { origin: ORIGIN, "x-visitor-id": "hv" }, { message: "hi" }, () => ({ message: NUM })],
];
const NUM = "__NUM__";
const withNum = (num, literal) => (b) => JSON.stringify(num(b)).replace(`"${NUM}"`, literal);

// Each mutation: [name, (valid body) => raw body, extra headers, allowed statuses].
const poison = (v) => ({ $gt: "", __proto__: null, constructor: { prototype: { admin: true } }, v });
const mutations = [
  ["truncated JSON", (b) => { const s = JSON.stringify(b); return s.slice(0, Math.floor(s.length / 2)); }, {}, [400]],
  ["trailing garbage", (b) => JSON.stringify(b) + "}{", {}, [400]],
  ["two documents", (b) => JSON.stringify(b) + JSON.stringify(b), {}, [400]],
  ["invalid UTF-8", (b) => Buffer.concat([Buffer.from(JSON.stringify(b).slice(0, -1) + ',"z":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}')]), {}, [400, 422]],
  ["lone surrogate escape", (b) => JSON.stringify(b).slice(0, -1) + ',"z":"\\ud800"}', {}, [400, 422]],
  ["deep nesting", () => '{"a":' + deep(20000) + "}", {}, [400, 413, 422]],
  ["huge number", (b, num) => withNum(num, "1e400")(b), {}, [400, 422]],
  ["integer past u64", (b, num) => withNum(num, "184467440737095516160")(b), {}, [400, 422]],
  ["negative integer", (b, num) => withNum(num, "-1")(b), {}, [400, 422]],
  ["fractional where an integer goes", (b, num) => withNum(num, "1.5e2")(b), {}, [400, 422]],
  ["NaN literal", (b, num) => withNum(num, "NaN")(b), {}, [400]],
  ["array body", () => "[1,2]", {}, [400, 422]],
  ["string body", () => '"hello"', {}, [400, 422]],
  ["null body", () => "null", {}, [400, 422]],
  ["empty body", () => "", {}, [400, 422]],
  ["every field an object", (b) => JSON.stringify(Object.fromEntries(Object.keys(b).map((k) => [k, poison(1)]))), {}, [400, 422]],
  ["every field a huge number", (b) => JSON.stringify(Object.fromEntries(Object.keys(b).map((k) => [k, 1e308]))), {}, [400, 422]],
  ["every field null", (b) => JSON.stringify(Object.fromEntries(Object.keys(b).map((k) => [k, null]))), {}, [400, 422]],
  ["9 MB body", (b) => JSON.stringify({ ...b, pad: "x".repeat(9 * 1024 * 1024) }), {}, [413]],
  ["xml content type", (b) => JSON.stringify(b), { "content-type": "application/xml" }, [415]],
  ["form content type", (b) => JSON.stringify(b), { "content-type": "application/x-www-form-urlencoded" }, [415]],
];

// Ids in paths: traversal, separators, control characters, length, lookalikes.
// A dot segment reaches the parent route: a GET there may answer (the admin may read it anyway);
// anything else must be refused.
const DOTS = (method) => (method === "GET" ? [200, 400, 404, 405] : [400, 404, 405, 415, 422]);
// Workers resolve `..` and `%2e%2e` before the worker sees the path, so those land on the parent
// route, which must refuse them too (a tenant DELETE needs ?confirm=).
const badIds = [
  ["traversal", "..%2F..%2Fetc%2Fpasswd", [400, 404]],
  ["dot segments", "%2e%2e", DOTS],
  ["raw dot segments", "..", DOTS],
  ["encoded colon (key separator)", "a%3Ab", [400, 404]],
  ["null byte", "a%00b", [400, 404]],
  ["CRLF", "a%0D%0Ax-injected:1", [400, 404]],
  ["overlong", "a".repeat(400), [400, 404, 414]],
  ["right-to-left override", "%E2%80%AEevil", [400, 404]],
  ["percent garbage", "%ZZ%", [400, 404]],
];
const idRoutes = (id) => [
  ["GET", `${A}/${id}`, admin],
  ["GET", `${A}/${T}/sources/${id}`, admin],
  ["PUT", `${A}/${T}/channels/${id}`, admin, '{"kind":"telegram","credentials":{"bot_token":"1:x"}}'],
  ["DELETE", `${A}/${T}/integrations/${id}`, admin],
  ["POST", `${A}/${T}/dead-letters/${id}/replay`, admin],
  ["DELETE", `${A}/${T}/keys/${id}`, admin],
  ["POST", `/v1/channels/${id}/messages`, auth(), '{"conversation_id":"1","type":"text","text":"x"}'],
  ["POST", `/v1/integrations/${id}/lookup`, auth(), '{"input":{}}'],
  ["POST", `/v1/integrations/crm/${id}`, auth(), '{"input":{}}'],
  ["GET", `/v1/deliveries/${id}`, auth()],
  ["GET", `/v1/widget/conversations/${id}?key=PK`, { origin: ORIGIN }],
  ["POST", `/v1/webhooks/${id}/stripe`, json, "{}"],
  ["POST", `/v1/webhooks/${T}/${id}`, json, "{}"],
];

function cases() {
  const out = [];
  for (const [route, method, path, headers, valid, num] of jsonRoutes())
    for (const [m, make, extra, allowed] of mutations)
      out.push([`${route}: ${m}`, method, path, { ...json, ...headers, ...extra }, make(valid, num), allowed]);
  for (const [name, id, allowed] of badIds)
    for (const [method, path, headers, body] of idRoutes(id))
      out.push([`${name} id: ${method} ${path.slice(0, 60)}`, method, path, { ...json, ...headers }, body, typeof allowed === "function" ? allowed(method) : allowed]);
  // Credentials.
  for (const [name, headers, allowed] of [
    ["no credentials", {}, [401]],
    ["bearer with spaces only", { authorization: "Bearer    " }, [401]],
    ["basic auth", { authorization: "Basic Zm9vOmJhcg==" }, [401]],
    ["key with markup", { authorization: "Bearer sk_<script>alert(1)</script>" }, [401]],
    ["very long key", { authorization: "Bearer sk_" + "a".repeat(6000) }, [401]],
    ["publishable key as bearer", { authorization: "Bearer PK" }, [403]],
    ["admin token as tenant key", { authorization: `Bearer ${ADMIN_TOKEN}` }, [401]],
    ["two keys in x-api-key", { "x-api-key": `${"sk_" + "b".repeat(40)}, ${"sk_" + "c".repeat(40)}` }, [401]],
  ])
    for (const [method, path] of [["GET", "/v1/me"], ["POST", "/v1/chat/completions"], ["POST", "/v1/channels/tg/messages"], ["GET", "/v1/models"]])
      out.push([`${name}: ${method} ${path}`, method, path, { ...json, ...headers }, method === "POST" ? "{}" : undefined, allowed]);
  out.push(
    ["tenant key on the admin API", "GET", `${A}/${T}`, auth(), undefined, [403]],
    ["widget key from a foreign origin", "GET", "/v1/widget/config?key=PK", { origin: "https://evil.example.com" }, undefined, [403]],
    ["widget key from an origin with a path trick", "GET", "/v1/widget/config?key=PK", { origin: `${ORIGIN}.evil.example.com` }, undefined, [403]],
    ["widget key missing", "GET", "/v1/widget/config", { origin: ORIGIN }, undefined, [401]],
    ["widget key with CRLF", "GET", "/v1/widget/config?key=PK%0D%0Aset-cookie:x", { origin: ORIGIN }, undefined, [401, 403]],
    ["unknown admin sub-resource", "GET", `${A}/${T}/secrets`, admin, undefined, [404]],
    ["sealed blob planted by a client", "PUT", `${A}/${T}/sources/p`, { ...admin, ...json }, '{"kind":"slack","secrets":[{"$sealed":"v1.AAAA"}]}', [422]],
    ["keep marker with nothing to keep", "PUT", `${A}/${T}/sources/q`, { ...admin, ...json }, '{"kind":"slack","secrets":[{"set":true}]}', [422]],
    ["bogus method", "PATCH", `${A}/${T}`, admin, undefined, [405]],
    ["TRACE", "TRACE", "/v1/me", auth(), undefined, [405]],
    ["send: unknown type", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"carrier_pigeon","text":"x"}', [422]],
    ["send: number as recipient", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":1,"type":"text","text":"x"}', [422]],
    ["send: quick replies not a list", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"quick_reply","text":"x","quick_replies":"yes"}', [422]],
    ["send: location out of range", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"location","location":{"latitude":1e9,"longitude":0}}', [422]],
    ["send: idempotency key too long", "POST", "/v1/channels/tg/messages", { ...auth(), ...json, "idempotency-key": "k".repeat(300) }, '{"conversation_id":"1","type":"text","text":"x"}', [400]],
    ["send: media URL to a private address", "POST", "/v1/channels/tg/messages", { ...auth(), ...json }, '{"conversation_id":"1","type":"image","media":{"url":"file:///etc/passwd"}}', [422]],
    ["integration: input violates the schema", "POST", "/v1/integrations/crm/lookup", { ...auth(), ...json }, '{"input":{"contact_id":7,"n":1000}}', [422]],
    ["integration: header injection through input", "POST", "/v1/integrations/crm/lookup", { ...auth(), ...json }, JSON.stringify({ input: { contact_id: "c1", name: "a\r\nx-injected: 1" } }), [400, 422]],
    ["integration: unknown template", "POST", "/v1/integrations", { ...auth(), ...json }, '{"template":"../../etc","id":"z"}', [404, 422]],
    ["llm: messages not a list", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"echo","messages":"hi"}', [400, 422]],
    ["llm: unknown role", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"echo","messages":[{"role":"root","content":"hi"}]}', [400, 422]],
    ["llm: max_tokens negative", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"echo","max_tokens":-5,"messages":[{"role":"user","content":"hi"}]}', [400, 422]],
    ["llm: max_tokens 1e400", "POST", "/v1/messages", { ...auth(), ...json }, '{"model":"echo","max_tokens":1e400,"messages":[{"role":"user","content":"hi"}]}', [400, 422]],
    ["llm: temperature a string", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"echo","temperature":"hot","messages":[{"role":"user","content":"hi"}]}', [400, 422]],
    ["llm: unknown model", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"../../gpt","messages":[{"role":"user","content":"hi"}]}', [400, 404]],
    ["llm: model names another provider's", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}', [400, 404]],
    ["llm: image URL to file://", "POST", "/v1/chat/completions", { ...auth(), ...json }, '{"model":"echo","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}', [400, 422]],
    ["llm: empty messages", "POST", "/v1/messages", { ...auth(), ...json }, '{"model":"echo","max_tokens":5,"messages":[]}', [400, 422]],
    ["widget: message 100 KB", "POST", "/v1/widget/chat?key=PK", { ...json, origin: ORIGIN }, JSON.stringify({ message: "x".repeat(100 * 1024) }), [413, 422]],
    ["widget: conversation id not hex", "POST", "/v1/widget/chat?key=PK", { ...json, origin: ORIGIN }, '{"message":"hi","conversation_id":"../../x"}', [400, 422]],
    ["webhook without body", "POST", `/v1/webhooks/${T}/stripe`, {}, undefined, [401]],
    ["webhook for unknown tenant", "POST", "/v1/webhooks/nobody/stripe", json, "{}", [404]],
    ["webhook handshake on a non-Meta source", "GET", `/v1/webhooks/${T}/stripe?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1`, {}, undefined, [400, 403]],
    ["Meta handshake with the wrong token", "GET", `/v1/webhooks/${T}/whatsapp?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1`, {}, undefined, [403]],
    ["stripe header garbage", "POST", `/v1/webhooks/${T}/stripe`, { "stripe-signature": "t=abc,v1=zz", ...json }, "{}", [401]],
    ["stripe header empty values", "POST", `/v1/webhooks/${T}/stripe`, { "stripe-signature": ",,,=,", ...json }, "{}", [401]],
    ["stripe timestamp past i64", "POST", `/v1/webhooks/${T}/stripe`, { "stripe-signature": "t=99999999999999999999999,v1=" + "0".repeat(64), ...json }, "{}", [401]],
    ["standard signature list of 500", "POST", `/v1/webhooks/${T}/standard`, { "webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": Array(500).fill("v1,AAAA").join(" "), ...json }, "{}", [401]],
    ["twilio JSON without bodySHA256", "POST", `/v1/webhooks/${T}/twilio`, { "x-twilio-signature": "AAAA", ...json }, "{}", [401]],
    ["delivery id of another shape", "GET", "/v1/deliveries/dlv_", auth(), undefined, [404]],
  );
  // Webhooks of every kind: unsigned, signed with a wrong secret, and a signed body tampered with.
  for (const kind of KINDS) {
    const s = sample(T, S, kind);
    const ct = { "content-type": kind === "twilio" ? "application/x-www-form-urlencoded" : "application/json" };
    out.push([`${kind}: unsigned`, "POST", `/v1/webhooks/${T}/${kind}`, ct, s.body, [401]]);
    const forged = sample(T, Object.fromEntries(KINDS.map((k) => [k, k === "standard" ? "whsec_" + randomBytes(24).toString("base64") : "wrong-secret"])), kind);
    out.push([`${kind}: re-signed with a guessed secret`, "POST", `/v1/webhooks/${T}/${kind}`, { ...ct, ...forged.headers }, s.body, [401]]);
    // Telegram authenticates with a secret token header, not a signature over the body.
    if (kind !== "telegram") out.push([`${kind}: tampered body`, "POST", `/v1/webhooks/${T}/${kind}`, { ...ct, ...s.headers }, s.body.replace(/[0-9]/, "9").replace("hi", "HI") + " ", [401]]);
  }
  // Replays of signatures older than the tolerance, for the providers that sign a timestamp.
  const old = Math.floor(Date.now() / 1000) - 3600;
  for (const [kind, headers] of [
    ["stripe", (b) => sign.stripe(S.stripe, b, { ts: old })],
    ["slack", (b) => sign.slack(S.slack, b, { ts: old })],
    ["standard", (b) => sign.standard(S.standard, b, { id: "msg_old", ts: old })],
    ["hmac", (b) => sign.hmac(S.hmac, b, { id: "ev-old", ts: old })],
  ]) {
    const s = sample(T, S, kind);
    out.push([`${kind}: replayed an hour late`, "POST", `/v1/webhooks/${T}/${kind}`, { ...json, ...headers(s.body) }, s.body, [401]]);
    const future = Math.floor(Date.now() / 1000) + 3600;
    const h = kind === "stripe" ? sign.stripe(S.stripe, s.body, { ts: future }) : kind === "slack" ? sign.slack(S.slack, s.body, { ts: future }) : kind === "standard" ? sign.standard(S.standard, s.body, { id: "msg_f", ts: future }) : sign.hmac(S.hmac, s.body, { id: "ev-f", ts: future });
    out.push([`${kind}: signed an hour in the future`, "POST", `/v1/webhooks/${T}/${kind}`, { ...json, ...h }, s.body, [401]]);
  }
  return out;
}

/** One raw request (node:http sends the path as written: no client-side dot-segment resolution). */
function send(method, path, headers, body, ms = 15000) {
  // A body over the limit goes with `Expect: 100-continue`, so the refusal is read before the
  // body is written (a server that refuses early may reset a connection still being written).
  const big = body && body.length > 1024 * 1024;
  if (big) headers = { ...headers, expect: "100-continue", "content-length": String(Buffer.byteLength(body)) };
  return new Promise((resolve, reject) => {
    // A fresh connection each time: the gateway may close one after refusing a body unread.
    const req = http.request({ host: gw.url.hostname, port: gw.url.port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") });
        req.destroy();
      });
      res.on("error", reject);
    });
    req.setTimeout(ms, () => req.destroy(new Error(`no answer in ${ms} ms`)));
    req.on("error", reject);
    req.on("socket", (sock) => sock.on("error", () => {}));
    if (big) req.on("continue", () => req.end(body));
    else req.end(body);
  });
}

/** Sends one case; returns a failure description, or null. */
async function check([name, method, path, headers, body, allowed]) {
  const fix = (v) => (typeof v === "string" ? v.replaceAll("PK", pk) : v);
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, fix(v)]));
  let res;
  try {
    res = await send(method, fix(path), h, body);
  } catch (e) {
    return `${name}: no answer (${e.message})`;
  }
  let parsed;
  try {
    parsed = JSON.parse(res.text);
  } catch {}
  if (!allowed.includes(res.status)) return `${name}: ${res.status} ${res.text.slice(0, 160)}`;
  if (res.status === 200) return null; // a dot segment resolved to a readable parent route
  const e = parsed?.error;
  const rid = e?.request_id ?? parsed?.request_id;
  if (!e?.type || !e.message || rid !== res.headers["x-request-id"]) return `${name}: not the error model: ${res.text.slice(0, 160)}`;
  if (!res.headers["content-type"]?.startsWith("application/json")) return `${name}: content-type ${res.headers["content-type"]}`;
  return null;
}

test("at least 200 hostile requests across every route: each a 4xx in the route's error format, never a 500 or a hang", async (t) => {
  const all = cases();
  assert.ok(all.length >= 200, `${all.length} cases`);
  const failures = [];
  for (const c of all) {
    const f = await check(c);
    if (f) failures.push(f);
  }
  assert.deepEqual(failures, []);
  t.diagnostic(`${all.length} hostile requests`);
  // Nothing was created or sent by any of them.
  for (const p of ["x1", `${T}/sources/s-new`, `${T}/channels/c-new`, `${T}/integrations/i-new`, `${T}/sources/p`]) {
    const r = await gw.admin("GET", p);
    assert.equal(r.status, 404, `${p} exists: ${r.text}`);
  }
  const keys = (await gw.admin("GET", `${T}/keys`)).body.data;
  assert.deepEqual(keys.map((k) => k.kind).sort(), ["publishable", "secret"], `no key was minted: ${JSON.stringify(keys)}`);
  assert.ok((await gw.admin("GET", `${T}/llm`)).body.routes.echo, "the LLM config is unchanged");
  assert.equal(prov.requests.length, 0, "no channel send reached the provider");
  assert.equal(upstreamSeen.length, 0, "no integration call reached the upstream");
  assert.equal((await gw.request("GET", "/v1/integrations/inst-new", { key })).status, 404);
});

/** Reads a whole answer, streamed or not, within `ms`; {status, contentType, text}. */
async function complete(path, headers, body, ms = 15000) {
  const res = await send("POST", path, { ...json, ...headers }, body, ms);
  return { status: res.status, contentType: res.headers["content-type"] ?? "", text: res.text, requestId: res.headers["x-request-id"] };
}

test("broken upstream answers (bad SSE framing, bad JSON, cut-off, oversized or hanging bodies): 502/504 before any content, an error event after it; never a 500 or a hang", async () => {
  const failures = [];
  let n = 0;
  for (const model of Object.keys(BROKEN))
    for (const upstream of ["oai", "ant"])
      for (const [path, extra, dialect] of [["/v1/chat/completions", {}, "openai"], ["/v1/messages", { "anthropic-version": "2023-06-01" }, "anthropic"]])
        for (const stream of [true, false]) {
          n++;
          const name = `${model} via ${upstream} -> ${dialect}${stream ? " stream" : ""}`;
          const body = JSON.stringify({ model: `${upstream}-${model}`, max_tokens: 20, stream, messages: [{ role: "user", content: "hi" }] });
          let r;
          try {
            r = await complete(path, { ...auth(), ...extra }, body);
          } catch (e) {
            failures.push(`${name}: no answer (${e.message})`);
            continue;
          }
          if (r.status === 200) {
            // Content was already sent: the stream must end with the dialect's error event.
            if (!stream || !r.contentType.startsWith("text/event-stream")) { failures.push(`${name}: 200 ${r.text.slice(0, 120)}`); continue; }
            const ended = dialect === "openai" ? /data: \{"error":/.test(r.text) && !r.text.includes("[DONE]") : /event: error\n/.test(r.text) && !r.text.includes("message_stop");
            if (!ended) failures.push(`${name}: stream did not end in an error event: ${r.text.slice(-200)}`);
            continue;
          }
          if (![502, 504].includes(r.status)) { failures.push(`${name}: ${r.status} ${r.text.slice(0, 160)}`); continue; }
          let e;
          try { e = JSON.parse(r.text); } catch { failures.push(`${name}: not JSON: ${r.text.slice(0, 120)}`); continue; }
          const ok = dialect === "openai" ? e.error?.type && e.error.message : e.type === "error" && e.error?.type && e.error.message;
          if (!ok) failures.push(`${name}: not the ${dialect} error format: ${r.text.slice(0, 160)}`);
        }
  assert.deepEqual(failures, []);
  assert.ok(n >= 80, `${n} broken-upstream cases`);
});

test("raw HTTP: header injection, oversized and duplicated headers, smuggling attempts get a 4xx and change nothing", async (t) => {
  /** Writes raw bytes to the gateway's socket; returns the status line's code (or 0 on a closed connection). */
  const raw = (bytes) => new Promise((resolve) => {
    const sock = net.connect(Number(gw.url.port), gw.url.hostname);
    let got = "";
    sock.setTimeout(10000, () => { sock.destroy(); resolve({ status: -1, text: got }); });
    sock.on("data", (d) => { got += d.toString("latin1"); });
    sock.on("error", () => {});
    sock.on("close", () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0), text: got }));
    sock.end(bytes);
  });
  const host = `Host: ${gw.url.host}\r\n`;
  const key1 = `Authorization: Bearer ${key}\r\n`;
  // [name, bytes, statuses the gateway may answer, whether the HTTP runtime may refuse it first]
  // workerd's own HTTP parser refuses some requests before any worker runs (a plain-text 4xx/5xx
  // without x-request-id); on Cloudflare the edge's front line answers those with a 400.
  const cases = [
    ["tenant header smuggled after a bare LF", `GET /v1/me HTTP/1.1\r\n${host}${key1}X-A: 1\nX-Tenant-Id: demo\r\nConnection: close\r\n\r\n`, [200], true],
    ["header with a bare CR", `GET /v1/me HTTP/1.1\r\n${host}${key1}X-A: 1\rX-Tenant-Id: demo\r\nConnection: close\r\n\r\n`, [200], true],
    ["a 200 KB header", `GET /v1/me HTTP/1.1\r\n${host}${key1}X-Big: ${"a".repeat(200 * 1024)}\r\nConnection: close\r\n\r\n`, [200, 431], true],
    ["3000 headers", `GET /v1/me HTTP/1.1\r\n${host}${key1}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join("")}Connection: close\r\n\r\n`, [200, 431], true],
    ["two Authorization headers", `GET /v1/me HTTP/1.1\r\n${host}${key1}Authorization: Bearer sk_other\r\nConnection: close\r\n\r\n`, [400, 401], false],
    ["Content-Length and Transfer-Encoding together", `POST /v1/channels/tg/messages HTTP/1.1\r\n${host}${key1}Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nPOST /v1/admin/tenants/x HTTP/1.1\r\n\r\n`, [400], true],
    ["two different Content-Lengths", `POST /v1/channels/tg/messages HTTP/1.1\r\n${host}${key1}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 60\r\nConnection: close\r\n\r\n{}`, [400], true],
    ["a lying Content-Length", `POST /v1/channels/tg/messages HTTP/1.1\r\n${host}${key1}Content-Type: application/json\r\nContent-Length: 99999\r\nConnection: close\r\n\r\n{}`, [400], true],
    ["garbage request line", `GARBAGE\r\n\r\n`, [], true],
    ["absolute-form URL to another host", `GET http://evil.example.com/v1/me HTTP/1.1\r\n${host}${key1}Connection: close\r\n\r\n`, [200, 400, 404], true],
  ];
  const failures = [];
  const runtime = [];
  for (const [name, bytes, allowed, runtimeMay] of cases) {
    const r = await raw(bytes);
    const byGateway = /\r\nx-request-id: req_/i.test(r.text);
    if (!byGateway) {
      if (!runtimeMay) failures.push(`${name}: not answered by the gateway: ${r.text.slice(0, 120)}`);
      else runtime.push(`${name}: ${r.status}`);
      continue;
    }
    if (!allowed.includes(r.status)) failures.push(`${name}: ${r.status} ${r.text.slice(0, 160)}`);
    if (r.status === 200 && !r.text.includes(`"tenant":"${T}"`)) failures.push(`${name}: answered for another tenant: ${r.text.slice(-200)}`);
  }
  assert.deepEqual(failures, []);
  t.diagnostic(`refused by workerd's HTTP layer before the worker: ${runtime.join("; ")}`);
  assert.equal(prov.requests.length, 0, "no smuggled send reached the provider");
  assert.equal((await gw.admin("GET", "x")).status, 404, "no smuggled admin request ran");
});

test("integration inputs cannot traverse the upstream path or inject headers", async () => {
  upstreamSeen.length = 0;
  const r = await gw.request("POST", "/v1/integrations/crm/lookup", { key, json: { input: { contact_id: "../../admin?x=1#f", name: "a&b=c" } } });
  assert.equal(r.status, 200, r.text);
  assert.equal(upstreamSeen.length, 1);
  const url = upstreamSeen[0].url;
  assert.ok(url.startsWith("/api/contacts/..%2F..%2Fadmin%3Fx%3D1%23f"), url);
  assert.equal(new URL(url, "http://x").searchParams.get("q"), "a&b=c", "query values are encoded, not spliced");
  assert.equal(upstreamSeen[0].headers["x-customer"], "a&b=c");
});

test("a replayed webhook is answered 200 as a duplicate and never queued twice; a stale replay is 401", async () => {
  for (const kind of KINDS) {
    const s = sample(T, S, kind);
    const ct = kind === "twilio" ? {} : json;
    const first = await gw.request("POST", `/v1/webhooks/${T}/${kind}`, { body: s.body, headers: { ...ct, ...s.headers } });
    assert.equal(first.status, 200, `${kind}: ${first.text}`);
    const again = await gw.request("POST", `/v1/webhooks/${T}/${kind}`, { body: s.body, headers: { ...ct, ...resign(S, kind, s) } });
    assert.equal(again.status, 200, `${kind}: ${again.text}`);
    if (kind !== "twilio") assert.equal(again.body.duplicates, 1, `${kind}: ${again.text}`);
  }
});

test("no secret reached a log line or a response", () => {
  assert.deepEqual(gw.leaks(), []);
});
