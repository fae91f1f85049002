// Spend budgets and per-key settings: a budget reached under 100 concurrent requests, spend that
// adds up to the costs the gateway reported, keys that expire, keys limited to some models or to
// their own requests per minute, rotation, and a stream the client leaves. A local server speaks
// OpenAI's wire format; the official openai and @anthropic-ai/sdk clients call the gateway.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startGateway, planted, assertError } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-upstream-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm;

// $1,000 per million output tokens, input free: a request of `max_tokens: 50` to an `exact-*`
// model costs exactly what the gateway reserves for it, $0.05.
const PRICE = { input_per_mtok: 0, output_per_mtok: 1000 };
const COST = 0.05;

before(async () => {
  gw = await startGateway({ seed: false });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:exact-a", JSON.stringify(PRICE));
  await kv.put("pricing:drip", JSON.stringify(PRICE));
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

/** A tenant with an OpenAI provider at the local stand-in; returns its first key. */
async function tenant(name, limits = {}) {
  const t = await gw.tenant(name, { limits });
  const r = await gw.admin("PUT", `${name}/llm`, {
    providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY } },
    routes: { default: [{ provider: "oai", model: "exact-a" }], drip: [{ provider: "oai", model: "drip" }] },
  });
  assert.equal(r.status, 201, r.text);
  return t;
}

async function newKey(name, settings) {
  const r = await gw.admin("POST", `${name}/keys`, { scopes: ["*"], ...settings });
  assert.equal(r.status, 201, r.text);
  planted.add(r.body.key);
  return r.body;
}

const chat = (key, model = "default") =>
  gw.request("POST", "/v1/chat/completions", { key, json: { model, max_tokens: 50, messages: [{ role: "user", content: "hi" }] } });

/** `GET /v1/me` once nothing is reserved any more (charges settle after the response). */
async function settledMe(key) {
  for (let i = 0; ; i++) {
    const me = await gw.request("GET", "/v1/me", { key });
    assert.equal(me.status, 200, me.text);
    const budgets = Object.values(me.body.budget).filter(Boolean).flatMap((b) => [b.monthly, b.daily]).filter(Boolean);
    if (budgets.every((b) => b.reserved_usd === 0) || i > 100) return me.body;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const near = (a, b) => Math.abs(a - b) < 1e-9;

test("a budget reached under 100 concurrent requests is overshot by less than one request, and its spend is the sum of the reported costs", async () => {
  const { key } = await tenant("spender", { budget: { monthly_usd: 0.99 } });
  let admitted = 0;
  let reported = 0;
  let refusal;
  for (let round = 0; round < 5; round++) {
    const answers = await Promise.all(Array.from({ length: 100 }, () => chat(key)));
    const ok = answers.filter((a) => a.status === 200);
    admitted += ok.length;
    reported += ok.reduce((sum, a) => sum + Number(a.headers.get("x-gateway-cost-usd")), 0);
    refusal ??= answers.find((a) => a.status === 429);
    await settledMe(key);
    if (ok.length === 0) break;
  }
  // 19 requests commit $0.95 < $0.99, so a 20th gets in; then nothing more.
  assert.equal(admitted, 20);
  assert.ok(near(reported, 20 * COST), `reported ${reported}`);
  const me = await settledMe(key);
  const month = me.budget.tenant.monthly;
  assert.ok(near(month.spent_usd, reported), JSON.stringify(month));
  assert.ok(month.spent_usd >= 0.99 && month.spent_usd - 0.99 < COST, JSON.stringify(month));
  assert.equal(month.remaining_usd, 0);
  assert.match(month.resets_at, /^\d{4}-\d{2}-01T00:00:00Z$/);
  // The refusal is OpenAI's "insufficient_quota", names the budget and its reset, and tells the
  // official clients not to retry.
  assertError(assert, refusal, 429, "insufficient_quota");
  assert.equal(refusal.body.error.code, "insufficient_quota");
  assert.match(refusal.body.error.message, /^the tenant's monthly budget of 0\.99 USD is spent .*resets at \d{4}-\d{2}-01T00:00:00Z$/);
  assert.equal(refusal.headers.get("x-should-retry"), "false");
  assert.ok(Number(refusal.headers.get("retry-after")) > 0);
  // Anthropic's clients get their own error shape.
  const anthropic = new Anthropic({ apiKey: key, baseURL: gw.url.origin, maxRetries: 3 });
  const before = gw.logs.length;
  const e = await anthropic.messages.create({ model: "default", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
  assert.ok(e instanceof Anthropic.RateLimitError, String(e));
  assert.equal(e.error.error.type, "rate_limit_error");
  assert.match(e.error.error.message, /monthly budget/);
  const tried = gw.logs.slice(before).filter((l) => l.message.includes('"route":"/v1/messages"')).length;
  assert.equal(tried, 1, "the client did not retry a spent budget");
});

test("a key's budget stops that key alone, its rotation shares it, and the key list shows its spend", async () => {
  const { tenant: t, key: other } = await tenant("keyspend");
  const capped = await newKey(t, { name: "ci", budget: { monthly_usd: 0.1, daily_usd: 1, alert_at: 0.5 }, metadata: { team: "search" } });
  assert.equal(capped.name, "ci");
  assert.deepEqual(capped.budget, { monthly_usd: 0.1, daily_usd: 1, alert_at: 0.5 });
  assert.equal((await chat(capped.key)).status, 200);
  // The first request took the key past half its budget: the alert, once, in the usage record.
  const alerted = await gw.waitForLog((m) => m.includes('"budget_alerts"') && m.includes(capped.id));
  assert.ok(alerted, "an alert was logged");
  const line = JSON.parse(alerted.message);
  assert.deepEqual(line.key, { id: capped.id, metadata: { team: "search" } });
  assert.equal(line.llm_usage.budget_alerts[0].period, "monthly");
  assert.equal(line.llm_usage.budget_alerts[0].alert_at, 0.5);
  assert.equal((await chat(capped.key)).status, 200);
  const refused = await chat(capped.key);
  assertError(assert, refused, 429, "insufficient_quota");
  assert.match(refused.body.error.message, /^this API key's monthly budget of 0\.10 USD is spent/);
  assert.equal(gw.logs.filter((l) => l.message.includes('"budget_alerts"') && l.message.includes(capped.id)).length, 1);
  // Another key of the tenant is not affected.
  assert.equal((await chat(other)).status, 200);
  // A rotated key has the same settings and spends the same budget.
  const rotated = await gw.admin("POST", `${t}/keys/${capped.id}/rotate`);
  assert.equal(rotated.status, 201, rotated.text);
  planted.add(rotated.body.key);
  assert.equal(rotated.body.rotated_from, capped.id);
  assert.equal(rotated.body.name, "ci");
  assertError(assert, await chat(rotated.body.key), 429, "insufficient_quota");
  // Raising the budget lets both through again.
  const raised = await gw.admin("PATCH", `${t}/keys/${capped.id}`, { budget: { monthly_usd: 1 } });
  assert.equal(raised.status, 200, raised.text);
  assert.equal((await chat(capped.key)).status, 200);
  const me = await settledMe(capped.key);
  assert.ok(near(me.budget.key.monthly.spent_usd, 3 * COST), JSON.stringify(me.budget));
  assert.equal(me.budget.tenant, null);
  const list = await gw.admin("GET", `${t}/keys`);
  assert.equal(list.status, 200);
  const listed = list.body.data.find((k) => k.id === capped.id);
  assert.ok(near(listed.spend.monthly.spent_usd, 3 * COST), JSON.stringify(listed));
  assert.equal(listed.metadata.team, "search");
  assert.equal(listed.key, undefined);
  assert.ok(!list.text.includes(capped.key) && !list.text.includes(rotated.body.key));
  assert.equal(list.body.data.find((k) => k.id !== capped.id && k.id !== rotated.body.id).spend, null);
});

test("a key is never minted or patched already expired; a rotation can expire the old key, which is refused saying so", async () => {
  const { tenant: t } = await tenant("expiring");
  const past = Math.floor(Date.now() / 1000) - 10;
  // An expiry already passed is a mistake, not a key: 422, and nothing is minted or changed.
  const before = (await gw.admin("GET", `${t}/keys`)).body.data.length;
  const refused = await gw.admin("POST", `${t}/keys`, { scopes: ["*"], expires_at: past });
  assertError(assert, refused, 422, "validation_error");
  assert.match(refused.body.error.message, /expires_at/);
  assert.equal((await gw.admin("GET", `${t}/keys`)).body.data.length, before, "no key was minted");
  const k = await newKey(t, { expires_at: past + 3600 });
  assertError(assert, await gw.admin("PATCH", `${t}/keys/${k.id}`, { expires_at: past }), 422, "validation_error");
  assert.equal((await gw.admin("GET", `${t}/keys/${k.id}`)).body.expires_at, past + 3600, "the patch changed nothing");
  assert.equal((await gw.request("GET", "/v1/models", { key: k.key })).status, 200);
  // "Stop the old key now" is what a past `old_key_expires_at` means.
  const rotated = await gw.admin("POST", `${t}/keys/${k.id}/rotate`, { old_key_expires_at: past });
  assert.equal(rotated.status, 201, rotated.text);
  planted.add(rotated.body.key);
  const r = await gw.request("GET", "/v1/models", { key: k.key });
  assertError(assert, r, 401, "authentication_error");
  assert.match(r.body.error.message, /^this API key expired at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
  assert.equal((await gw.request("GET", "/v1/models", { key: rotated.body.key })).status, 200);
  // Clearing the expiry renews it.
  const renewed = await gw.admin("PATCH", `${t}/keys/${k.id}`, { expires_at: null });
  assert.equal(renewed.status, 200, renewed.text);
  assert.equal((await gw.request("GET", "/v1/models", { key: k.key })).status, 200);
  // Settings are checked: a bad one changes nothing.
  const bad = await gw.admin("PATCH", `${t}/keys/${rotated.body.id}`, { rpm: 0, name: "x" });
  assertError(assert, bad, 422, "validation_error");
  assert.equal((await gw.admin("GET", `${t}/keys/${rotated.body.id}`)).body.name, undefined);
  assertError(assert, await gw.admin("PATCH", `${t}/keys/key_0000000000000000`, { rpm: 1 }), 404, "not_found");
});

test("a model outside the key's allow-list is refused, in the client's dialect", async () => {
  const { tenant: t } = await tenant("allowlist");
  const k = await newKey(t, { allowed_models: ["oai/exact-*"] });
  const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  const sent = llm.counts.drip ?? 0;
  const ok = await client.chat.completions.create({ model: "default", max_tokens: 5, messages: [{ role: "user", content: "hi" }] });
  assert.equal(ok.choices[0].message.role, "assistant");
  const e = await client.chat.completions.create({ model: "drip", max_tokens: 5, messages: [{ role: "user", content: "hi" }] }).catch((e) => e);
  assert.ok(e instanceof OpenAI.PermissionDeniedError, String(e));
  assert.match(e.message, /may not use model `drip`/);
  assert.equal(llm.counts.drip ?? 0, sent, "nothing was sent upstream");
});

test("a key's own requests per minute stop it while another key of the tenant goes on", async () => {
  const { tenant: t, key: other } = await tenant("perkey", { rpm: 1000 });
  const k = await newKey(t, { rpm: 3 });
  for (let i = 0; i < 3; i++) assert.equal((await chat(k.key)).status, 200);
  const r = await chat(k.key);
  assertError(assert, r, 429, "rate_limit_error");
  assert.match(r.body.error.message, /key-requests per minute/);
  assert.equal(r.headers.get("x-ratelimit-limit-key-requests"), "3");
  for (let i = 0; i < 5; i++) assert.equal((await chat(other)).status, 200);
});

test("a stream the client leaves is charged what it produced, not what it reserved", async () => {
  const { key } = await tenant("leaver", { budget: { monthly_usd: 100 } });
  const ctrl = new AbortController();
  const res = await fetch(new URL("/v1/chat/completions", gw.url), {
    method: "POST",
    signal: ctrl.signal,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "drip", max_tokens: 4000, stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let seen = "";
  while ((seen.match(/word /g) ?? []).length < 3) {
    const { done, value } = await reader.read();
    assert.ok(!done, "the stream ended before the client left");
    seen += new TextDecoder().decode(value);
  }
  ctrl.abort();
  const line = await gw.waitForLog((m) => m.includes('"outcome":"client_gone"'), 5000);
  assert.ok(line, "the abandoned stream was accounted");
  const usage = JSON.parse(line.message).llm_usage;
  assert.ok(usage.output_tokens > 0 && usage.output_tokens < 4000, JSON.stringify(usage));
  const me = await settledMe(key);
  const month = me.budget.tenant.monthly;
  assert.ok(near(month.spent_usd, usage.cost_usd), JSON.stringify({ month, usage }));
  assert.ok(month.spent_usd < 4000 * 0.001, "less than the reservation of 4,000 tokens");
});

/** A tenant whose route `model` goes to the stand-in's model of that name, with `extra` LLM settings. */
async function routed(name, limits, model, extra = {}) {
  const t = await gw.tenant(name, { limits });
  const r = await gw.admin("PUT", `${name}/llm`, {
    providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY } },
    routes: { [model]: { targets: [{ provider: "oai", model }], ...extra } },
  });
  assert.equal(r.status, 201, r.text);
  return t;
}

test("a stream the guardrails block partway is charged what it produced, in the budget and the token window", async () => {
  const kv = await gw.mf.getKVNamespace("CONFIG");
  // $10 per million output tokens: each answer's 5,000 words cost about $0.05.
  await kv.put("pricing:chatter", JSON.stringify({ input_per_mtok: 0, output_per_mtok: 10 }));
  const { tenant: t } = await routed("blockedstreams", {}, "chatter", { guardrails: [{ detector: "deny", terms: ["forbidden"], response: "block" }] });
  const k = await newKey(t, { budget: { monthly_usd: 100 }, tpm: 10_000_000 });
  const client = new OpenAI({ apiKey: k.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  for (let i = 0; i < 20; i++) {
    const stream = await client.chat.completions.create({ model: "chatter", stream: true, max_tokens: 8000, messages: [{ role: "user", content: "talk" }] });
    let text = "";
    let failed;
    try {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    } catch (e) {
      failed = e;
    }
    assert.ok(text.length > 20_000, `the client received most of it (${text.length})`);
    assert.doesNotMatch(text, /forbidden/);
    assert.ok(failed, "the stream ended in an error: the guardrails blocked it");
  }
  const me = await settledMe(k.key);
  const spent = me.budget.key.monthly.spent_usd;
  // 20 answers of about 5,000 tokens at $10 a million: about $1, never nothing.
  assert.ok(spent > 0.5, `spent ${spent}`);
  // The token window kept what the streams produced: about 100,000 tokens of 10,000,000.
  const next = await gw.request("POST", "/v1/chat/completions", { key: k.key, json: { model: "chatter", max_tokens: 10, messages: [{ role: "user", content: "hi" }] } });
  const remaining = Number(next.headers.get("x-ratelimit-remaining-key-tokens"));
  assert.ok(remaining < 10_000_000 - 90_000, `remaining ${remaining}`);
});

test("images and input by reference reserve their bound: concurrent requests cannot overshoot a budget", async () => {
  const kv = await gw.mf.getKVNamespace("CONFIG");
  // $0.25 per million input tokens: a request of 20 images costs $0.0075 (30,025 tokens as the
  // stand-in counts, 1,500 an image) and reserves $0.019 (3,800 an image at OpenAI's bound).
  await kv.put("pricing:vision", JSON.stringify({ input_per_mtok: 0.25, output_per_mtok: 0, context_window: 128000 }));
  const { key } = await routed("pictures", { budget: { monthly_usd: 0.1 } }, "vision");
  const content = [{ type: "text", text: "what do these show?" },
    ...Array.from({ length: 20 }, (_, i) => ({ type: "image_url", image_url: { url: `https://images.example/${i}.png` } }))];
  const ask = () => gw.request("POST", "/v1/chat/completions", { key, json: { model: "vision", max_tokens: 10, messages: [{ role: "user", content }] } });
  const answers = await Promise.all(Array.from({ length: 20 }, ask));
  const ok = answers.filter((a) => a.status === 200);
  assert.ok(ok.length > 0, "some were admitted");
  const me = await settledMe(key);
  const month = me.budget.tenant.monthly;
  const oneEstimate = (20 * 3_800 + 200) * 0.25e-6;
  assert.ok(month.spent_usd <= 0.1 + oneEstimate, `spent ${month.spent_usd} of 0.1 by ${ok.length} requests`);
  const refused = answers.find((a) => a.status === 429);
  assert.ok(refused, "the rest were refused");
  assert.match(refused.body.error.message, /monthly budget/);
});

test("a background response is refused to a budgeted tenant, naming the field; a stored response reserves the context window", async () => {
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:stateful", JSON.stringify({ input_per_mtok: 1, output_per_mtok: 1, context_window: 200000 }));
  const { key } = await routed("background", { budget: { monthly_usd: 0.1 } }, "stateful");
  const n = llm.requests.length;
  const bg = await gw.request("POST", "/v1/responses", { key, json: { model: "stateful", input: "work on it", background: true } });
  assertError(assert, bg, 400, "invalid_request_error");
  assert.match(bg.body.error.message, /`background: true`/);
  assert.equal(llm.requests.length, n, "it did not reach the provider");
  // `previous_response_id` may fill the model's 200,000-token window: each reserves $0.20 of the
  // $0.10, so of five at once, the first admitted takes the budget and the others wait.
  const stored = () => gw.request("POST", "/v1/responses", { key, json: { model: "stateful", input: "and then?", previous_response_id: "resp_abc", max_output_tokens: 10 } });
  llm.delays.stateful = 300; // the first is still answering when the others arrive
  const answers = await Promise.all(Array.from({ length: 5 }, stored));
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 429, 429, 429, 429]);
});

test("a client that stops reading a stream is let go within the target's timeout: the provider's body is cancelled, the reservation charged what was produced", async () => {
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:flood", JSON.stringify({ input_per_mtok: 0, output_per_mtok: 10 }));
  const { key } = await gw.tenant("stalled", { limits: { budget: { monthly_usd: 100 } } });
  const r = await gw.admin("PUT", "stalled/llm", {
    providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY } },
    routes: { flood: [{ provider: "oai", model: "flood", timeout_ms: 1000 }] },
  });
  assert.equal(r.status, 201, r.text);
  // 100,000 tokens at $10 a million: $1 reserved while the stream runs.
  const body = JSON.stringify({ model: "flood", stream: true, max_tokens: 100_000, messages: [{ role: "user", content: "go" }] });
  const res = await new Promise((ok, fail) => {
    const req = http.request(new URL("/v1/chat/completions", gw.url), { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } }, ok);
    req.on("error", fail);
    req.end(body);
  });
  assert.equal(res.statusCode, 200);
  // The client reads its first MiB, then nothing more, and keeps the connection open.
  let got = 0;
  res.on("data", (c) => {
    got += c.length;
    if (got > 1 << 20) res.pause();
  });
  res.on("error", () => {});
  const month = async () => (await gw.request("GET", "/v1/me", { key })).body.budget.tenant.monthly;
  let seen;
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 250));
    seen = { open: llm.open.flood, ...(await month()) };
    if (seen.open === 0 && seen.reserved_usd === 0) break;
  }
  res.destroy();
  assert.equal(seen.open, 0, `the provider's body is let go: ${JSON.stringify(seen)}`);
  assert.equal(seen.reserved_usd, 0, `the reservation is settled: ${JSON.stringify(seen)}`);
  assert.ok(seen.spent_usd > 0, `what was produced is charged: ${JSON.stringify(seen)}`);
});
