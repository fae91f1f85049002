// The gateway's own platform failing: the built worker runs through tests/faults/entry.mjs, whose
// Durable Object namespaces, KV namespaces and queues fail on command. Under each fault a request
// gets a retryable 503 with Retry-After (in the client's dialect on LLM routes) and never a
// success it did not earn: no webhook acknowledged that is not durably recorded, no message
// reported sent that was not, no LLM call past limits that could not be checked. Once the fault
// clears, what the callers retry is delivered, exactly once and under one id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startGateway, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startProviders, providerTokens } from "../mocks/providers.mjs";
import { startLlm } from "../mocks/llm.mjs";
import { sourceSecrets, sourceDoc, sample, eventId } from "../samples.mjs";

const T = "shaky";
const DEST = "whsec_" + randomBytes(32).toString("base64");
const OPENAI_KEY = "sk-plat-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-plat-" + randomBytes(8).toString("hex");
const S = sourceSecrets();
const tokens = providerTokens();
for (const s of [DEST, OPENAI_KEY, ANTHROPIC_KEY, S.standard, ...Object.values(tokens)]) planted.add(s);
let gw, dest, prov, llm, key;

before(async () => {
  // Open work left in a record is sent again 2 s past its due time (a lost queue copy).
  gw = await startGateway({ seed: false, faults: true, extraBindings: { REDELIVERY_GRACE_SECONDS: "2", DELIVERY_RETRY_BASE_SECONDS: "1" } });
  dest = await startDestination(DEST);
  prov = await startProviders({ tokens });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  // A budget: every LLM request asks the tenant's limiter (spend is never leased to an isolate).
  ({ key } = await gw.tenant(T, { destination: { url: dest.url, secret: DEST }, limits: { budget: { monthly_usd: 100 } } }));
  const put = async (p, doc) => assert.equal((await gw.admin("PUT", `${T}/${p}`, doc)).status, 201, p);
  await put("sources/app", sourceDoc(T, "standard", S.standard));
  await put("channels/tg", { kind: "telegram", base_url: prov.url, credentials: { bot_token: tokens.telegram } });
  await put("llm", {
    providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY }, claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY } },
    routes: { gpt: [{ provider: "oai", model: "gpt-ok" }], claude: [{ provider: "claude", model: "claude-ok" }], priced: [{ provider: "oai", model: "gpt-priced" }] },
  });
  // The tenant has a budget: every model it reaches needs a price.
  const kv = await gw.mf.getKVNamespace("CONFIG");
  for (const model of ["gpt-priced", "gpt-ok", "claude-ok"]) await kv.put(`pricing:${model}`, JSON.stringify({ input_per_mtok: 1, output_per_mtok: 1 }));
});
after(async () => {
  await gw?.faults({});
  await gw?.stop();
  await Promise.all([dest?.close(), prov?.close(), llm?.close()]);
});

/** A fault for the length of `body`, cleared after it whatever happens. */
async function during(faults, body) {
  await gw.faults(faults);
  try {
    return await body();
  } finally {
    await gw.faults({});
  }
}

const post = (s) => gw.request("POST", `/v1/webhooks/${T}/app`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });

function assertRetryable(r, what) {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.headers.get("retry-after"), "1", what);
  assert.ok(!r.text.includes("injected"), `${what}: no internals in the answer`);
}

/** The destination got the provider's event `pid` exactly once, under its one stable id. */
async function deliveredOnce(pid) {
  const id = eventId(T, "app", pid);
  await dest.until(() => dest.delivered.has(id), 15_000, `delivery of ${pid}`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(dest.delivered.get(id).length, 1, "delivered once");
}

for (const [binding, what] of [["DEDUPE", "the dedupe object"], ["EVENTS", "the events queue"]]) {
  test(`webhook ingress while ${what} fails: 503 until it is recorded, then delivered exactly once`, async () => {
    const s = sample(T, S, "standard");
    const refused = await during({ [binding]: { rate: 1, mode: "throw" } }, () => post(s));
    assertRetryable(refused, binding);
    // The provider retries the same delivery once the fault clears.
    const taken = await post(s);
    assert.equal(taken.status, 200, taken.text);
    assert.equal(taken.body.received, 1, "not mistaken for a duplicate of the refused attempt");
    await deliveredOnce(s.pid);
  });
}

test("a platform failure is logged once, its detail in the request's own line under its request id", async () => {
  const from = gw.logs.length;
  const r = await during({ DEDUPE: { rate: 1, mode: "throw" } }, () => post(sample(T, S, "standard")));
  assertRetryable(r, "DEDUPE");
  const id = r.headers.get("x-request-id");
  const line = await gw.waitForLog((m) => m.includes(`"request_id":"${id}"`) && m.includes('"status":503'));
  const entry = JSON.parse(line.message);
  assert.match(entry.detail ?? "", /injected fault: DEDUPE/, line.message);
  const stray = gw.logs.slice(from).filter((l) => l.message.includes("injected fault") && !l.message.includes(id));
  assert.deepEqual(stray, [], "no line carries the detail without its request id");
});

test("webhook ingress under a 50% dedupe fault: every event the provider retries is delivered once", async () => {
  const events = Array.from({ length: 6 }, () => sample(T, S, "standard"));
  const deliveries = dest.delivered.size;
  const statuses = await during({ DEDUPE: { rate: 0.5, mode: "throw" } }, async () => {
    const seen = [];
    for (const s of events) seen.push((await post(s)).status);
    return seen;
  });
  assert.deepEqual([...new Set(statuses)].sort(), [200, 503], `some refused, some taken: ${statuses}`);
  // The provider retries what was refused (and, harmlessly, may retry what was taken).
  for (const s of events) assert.equal((await post(s)).status, 200);
  for (const s of events) await deliveredOnce(s.pid);
  assert.equal(dest.delivered.size, deliveries + events.length, "no event under a second id");
});

test("a dedupe object that never answers: 503 at the deadline, not a request held open", async () => {
  const s = sample(T, S, "standard");
  const started = Date.now();
  const r = await during({ DEDUPE: { rate: 1, mode: "hang" } }, () => post(s));
  assertRetryable(r, "hanging DEDUPE");
  assert.ok(Date.now() - started < 15_000, "answered by the object deadline");
  assert.equal((await post(s)).status, 200);
  await deliveredOnce(s.pid);
});

test("a channel send while its call gate fails: 503 and nothing sent; the retry sends once", async () => {
  const headers = { "idempotency-key": "plat-" + randomBytes(4).toString("hex") };
  const text = "gate-" + randomBytes(4).toString("hex");
  const send = () => gw.request("POST", "/v1/channels/tg/messages", { key, headers, json: { conversation_id: "123456789", type: "text", text } });
  const sent = () => prov.requests.filter((r) => JSON.stringify(r.body).includes(text)).length;
  assertRetryable(await during({ CALL_GATE: { rate: 1, mode: "throw" } }, send), "CALL_GATE");
  assert.equal(sent(), 0, "nothing reached the provider");
  const ok = await send();
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await send()).status, 200, "the key's result replayed");
  assert.equal(sent(), 1, "sent exactly once");
});

test("a send that needs a retry while the deliveries queue fails: 503, and the client's retry is the only copy sent", async () => {
  const text = "queued-" + randomBytes(4).toString("hex");
  const mine = (r) => JSON.stringify(r.body).includes(text);
  // The provider fails the first attempt (a transient 500): the send must be queued for a retry.
  let first = true;
  prov.behaviour = (r) => (mine(r) && first ? ((first = false), { status: 500, body: { ok: false, description: "busy" } }) : null);
  try {
    const send = () => gw.request("POST", "/v1/channels/tg/messages", { key, json: { conversation_id: "123456789", type: "text", text } });
    assertRetryable(await during({ DELIVERIES: { rate: 1, mode: "throw" } }, send), "DELIVERIES");
    const ok = await send();
    assert.equal(ok.status, 200, ok.text);
    // Past the open-work grace: a copy left in the channel's outbox would have gone out by now.
    await new Promise((r) => setTimeout(r, 6000));
    const accepted = prov.requests.filter((r) => mine(r) && r.ok);
    assert.equal(accepted.length, 1, `sent once: ${prov.requests.filter(mine).map((r) => r.ok)}`);
  } finally {
    prov.behaviour = () => null;
  }
});

test("the LLM proxy while the tenant's limiter fails: a 503 in the client's dialect, no provider call", async () => {
  const calls = () => llm.requests.length;
  const before = calls();
  await during({ RATE_LIMITER: { rate: 1, mode: "throw" } }, async () => {
    const openai = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
    const e = await openai.chat.completions.create({ model: "gpt", messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.equal(e.status, 503);
    assert.equal(e.error?.type, "api_error");
    assert.match(e.message, /did not answer; retry/);
    const anthropic = new Anthropic({ apiKey: key, baseURL: gw.url.origin, maxRetries: 0 });
    const a = await anthropic.messages.create({ model: "claude", max_tokens: 20, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
    assert.ok(a instanceof Anthropic.APIError, String(a));
    assert.equal(a.status, 503);
    assert.equal(a.error?.error?.type, "overloaded_error");
  });
  assert.equal(calls(), before, "a budget that cannot be checked is not spent");
  const openai = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  const ok = await openai.chat.completions.create({ model: "gpt", messages: [{ role: "user", content: "hi" }] });
  assert.ok(ok.choices[0].message.content);
});

test("a price KV cannot read is a 503 under a budget, never a request reserved and charged as free", async () => {
  const chat = (model) => gw.request("POST", "/v1/chat/completions", { key, json: { model, messages: [{ role: "user", content: "hi" }] } });
  // The key, the tenant and its LLM config are now in the isolate's cache; the price is not.
  assert.equal((await chat("gpt")).status, 200);
  const before = llm.requests.length;
  const r = await during({ CONFIG: { rate: 1, mode: "throw" } }, () => chat("priced"));
  assertRetryable(r, "CONFIG on a price");
  assert.equal(r.body.error.type, "api_error");
  assert.equal(llm.requests.length, before, "spend that cannot be checked does not happen");
  const ok = await chat("priced");
  assert.equal(ok.status, 200, ok.text);
  assert.ok(Number(ok.headers.get("x-gateway-cost-usd")) > 0, "priced once KV answers");
});

test("a key KV cannot look up is a 503, never a 401 that would tell the client its key is bad", async () => {
  const fresh = (await gw.admin("POST", `${T}/keys`, { scopes: ["*"] })).body.key;
  planted.add(fresh);
  const r = await during({ CONFIG: { rate: 1, mode: "throw" } }, () =>
    gw.request("POST", "/v1/chat/completions", { key: fresh, json: { model: "gpt", messages: [{ role: "user", content: "hi" }] } }),
  );
  assertRetryable(r, "CONFIG");
  assert.equal(r.body.error.type, "api_error");
  const ok = await gw.request("POST", "/v1/chat/completions", { key: fresh, json: { model: "gpt", messages: [{ role: "user", content: "hi" }] } });
  assert.equal(ok.status, 200, ok.text);
});

test("a dead letter while the dead-letter store fails: the consumer retries, and once it answers the letter is kept once", async () => {
  const s = sample(T, S, "standard");
  const id = eventId(T, "app", s.pid);
  // The destination refuses this event for good (400): it becomes a dead letter at once.
  dest.behaviour = (_n, body) => (body.id === id ? { status: 400 } : { status: 200 });
  try {
    await gw.faults({ DEAD_LETTERS: { rate: 1, mode: "throw" } });
    try {
      assert.equal((await post(s)).status, 200, "ingress does not touch the dead-letter store");
      // A second attempt proves the message went back on its queue instead of being dropped.
      await dest.until(() => dest.attempts.filter((a) => a.id === id).length >= 2, 20_000, "the consumer retrying");
    } finally {
      await gw.faults({});
    }
    const mine = async () => (await gw.admin("GET", `${T}/dead-letters`)).body.data.filter((l) => l.id === id);
    const end = Date.now() + 15_000;
    while (!(await mine()).length && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1000));
    const letters = await mine();
    assert.equal(letters.length, 1, "kept exactly once");
    assert.match(letters[0].last_error, /destination answered 400/);
    assert.ok(!dest.delivered.has(id), "never delivered");
  } finally {
    dest.behaviour = () => ({ status: 200 });
  }
});

test("an integration call while its call gate fails: 503 and the API is not called", async () => {
  let hits = 0;
  const api = http.createServer((_req, res) => {
    hits++;
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true,"contact":{"id":"c1"}}');
  });
  await new Promise((r) => api.listen(0, "127.0.0.1", r));
  try {
    const put = await gw.admin("PUT", `${T}/integrations/crm`, {
      name: "CRM",
      base_url: `http://127.0.0.1:${api.address().port}/api`,
      endpoints: { get: { method: "GET", path: "/contacts/c1", response: { success_path: "ok", data_path: "contact" } } },
    });
    assert.equal(put.status, 201, put.text);
    const call = () => gw.request("POST", "/v1/integrations/crm/get", { key, json: { input: {}, options: { skip_cache: true } } });
    assertRetryable(await during({ CALL_GATE: { rate: 1, mode: "throw" } }, call), "CALL_GATE");
    assert.equal(hits, 0, "no call past limits that could not be checked");
    const ok = await call();
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body.data, { id: "c1" });
    assert.equal(hits, 1);
  } finally {
    api.close();
  }
});

test("widget chat while its conversation object fails: 503 the page can read, and no LLM call", async () => {
  const origin = "https://shop.example.com";
  const doc = (await gw.admin("GET", T)).body;
  const { tenant: _t, ...rest } = doc;
  const put = await gw.admin("PUT", T, { ...rest, allowed_origins: [origin], assistant: { model: "gpt", system_prompt: "Be brief." } });
  assert.equal(put.status, 200, put.text);
  const pk = (await gw.admin("POST", `${T}/widget-keys`)).body.key;
  const chat = () => gw.request("POST", `/v1/widget/chat?key=${pk}`, { headers: { origin, "x-visitor-id": "v1" }, json: { message: "hi" } });
  const before = llm.requests.length;
  const r = await during({ CONVERSATIONS: { rate: 1, mode: "throw" } }, chat);
  assertRetryable(r, "CONVERSATIONS");
  assert.equal(r.headers.get("access-control-allow-origin"), origin, "the page's script can read the error");
  assert.equal(llm.requests.length, before, "no answer the conversation could not keep");
  const ok = await chat();
  assert.equal(ok.status, 200, ok.text);
  assert.ok(ok.headers.get("x-conversation-id"));
});

test("an admin write while KV fails: 503 and the record is as it was", async () => {
  const path = `${T}/channels/tg`;
  const was = (await gw.admin("GET", path)).body;
  const r = await during({ CONFIG: { rate: 1, mode: "throw" } }, () =>
    gw.admin("PUT", path, { kind: "telegram", base_url: "https://elsewhere.example.com", credentials: { bot_token: tokens.telegram } }),
  );
  assertRetryable(r, "CONFIG on an admin write");
  assert.deepEqual((await gw.admin("GET", path)).body, was, "nothing changed");
});
