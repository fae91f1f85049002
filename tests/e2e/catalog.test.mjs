// The model catalog at work on the routes: a request too large for a target's context window
// skips it without calling it; a provider's own context-length refusal moves on to a larger
// window, never to the same one; a route's `context_fallbacks` serve size only; a model with no
// price is refused to a payer with a budget, and priced by the tenant's `models`; `/v1/models`
// lists what the catalog knows. The official openai and @anthropic-ai/sdk clients call the
// gateway; the providers are local stand-ins whose `ctx-*` models check their windows
// (tests/mocks/llm_context.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startGateway, planted } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-upstream-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm, key, budgetedKey;

const T = "cataloged";
const providers = () => ({
  oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
  claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
});
const oai = (model, more = {}) => ({ provider: "oai", model, ...more });
const claude = (model, more = {}) => ({ provider: "claude", model, ...more });
const routes = {
  sized: [oai("ctx-1k"), oai("ctx-200k")],
  refused: [oai("ctx-refuse-openai", { retries: 2 }), oai("ctx-8k"), oai("ctx-200k")],
  "refused-claude": [claude("ctx-refuse-claude", { retries: 2 }), claude("ctx-200k")],
  escalating: { targets: [oai("ctx-1k")], context_fallbacks: [oai("ctx-200k")] },
  "not-for-errors": { targets: [oai("fail-500", { retries: 0 })], context_fallbacks: [oai("ctx-200k")] },
  small: [oai("ctx-1k")],
  big: [oai("ctx-200k")],
  unpriced: [oai("unpriced-ok")],
  "unpriced-claude": [claude("unpriced-ok")],
};

// Windows as the catalog has them (`pricing:{model}` in KV; the seed writes the shipped catalog).
const CATALOG = {
  "ctx-1k": { input_per_mtok: 1, output_per_mtok: 2, context_window: 1000, max_output_tokens: 500 },
  "ctx-8k": { input_per_mtok: 1, output_per_mtok: 2, context_window: 8000 },
  "ctx-refuse-openai": { input_per_mtok: 1, output_per_mtok: 2, context_window: 8000 },
  "ctx-refuse-claude": { input_per_mtok: 3, output_per_mtok: 15, context_window: 8000 },
  "ctx-200k": {
    input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3, context_window: 200000, max_output_tokens: 64000,
    modalities: { input: ["text", "image"], output: ["text"] }, features: ["tools", "vision"],
  },
};

before(async () => {
  gw = await startGateway({ seed: false });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  const kv = await gw.mf.getKVNamespace("CONFIG");
  for (const [model, entry] of Object.entries(CATALOG)) await kv.put(`pricing:${model}`, JSON.stringify(entry));
  ({ key } = await gw.tenant(T));
  const r = await gw.admin("PUT", `${T}/llm`, { providers: providers(), routes });
  assert.equal(r.status, 201, r.text);
  const budgeted = await gw.admin("POST", `${T}/keys`, { scopes: ["*"], budget: { monthly_usd: 5 } });
  assert.equal(budgeted.status, 201, budgeted.text);
  budgetedKey = budgeted.body.key;
  planted.add(budgetedKey);
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

const openai = (k = key) => new OpenAI({ apiKey: k, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
const anthropic = (k = key) => new Anthropic({ apiKey: k, baseURL: gw.url.origin, maxRetries: 0 });
const calls = (model) => llm.counts[model] ?? 0;
// About 2,000 tokens, as the stand-ins count: more than ctx-1k holds, far less than ctx-200k.
const LONG = "The quick brown fox jumps over the lazy dog. ".repeat(180);
const ask = (model, content, more = {}) => ({ model, max_tokens: 100, messages: [{ role: "user", content }], ...more });

test("a request too large for a target's window skips it without calling it; a short one is served there", async () => {
  const small = calls("ctx-1k");
  const { data, response } = await openai().chat.completions.create(ask("sized", LONG)).withResponse();
  assert.equal(response.headers.get("x-gateway-model"), "ctx-200k");
  assert.equal(response.headers.get("x-gateway-attempts"), "1", "one attempt: the small target was never called");
  assert.equal(calls("ctx-1k"), small, "no request reached the small model");
  assert.equal(data.choices[0].message.content, "Hello, world! ünïcødé ✓");
  const skipped = await gw.waitForLog((m) => m.includes('"llm_target_skipped"') && m.includes("oai/ctx-1k"));
  assert.ok(skipped, "the skip is logged");
  assert.ok(!skipped.message.includes("quick brown fox"), "the log names sizes, never the prompt");
  const short = await openai().chat.completions.create(ask("sized", "hi")).withResponse();
  assert.equal(short.response.headers.get("x-gateway-model"), "ctx-1k");
  assert.equal(calls("ctx-1k"), small + 1);
});

test("a provider's context-length refusal moves on to a larger window once, never to the same window again", async () => {
  const before = [calls("ctx-refuse-openai"), calls("ctx-8k"), calls("ctx-200k")];
  const { response } = await openai().chat.completions.create(ask("refused", "hi")).withResponse();
  assert.equal(response.headers.get("x-gateway-model"), "ctx-200k");
  assert.equal(response.headers.get("x-gateway-attempts"), "2");
  assert.equal(calls("ctx-refuse-openai"), before[0] + 1, "a context refusal is not retried, whatever `retries` says");
  assert.equal(calls("ctx-8k"), before[1], "a window no larger than the refuser's is not tried");
  assert.equal(calls("ctx-200k"), before[2] + 1);
  // The same through the Anthropic SDK, on Anthropic's "prompt is too long".
  const refuser = calls("ctx-refuse-claude");
  const { data, response: r } = await anthropic().messages.create(ask("refused-claude", "hi")).withResponse();
  assert.equal(r.headers.get("x-gateway-model"), "ctx-200k");
  assert.equal(calls("ctx-refuse-claude"), refuser + 1);
  assert.equal(data.content[0].text, "Hello, world! ünïcødé ✓");
  // A stream is refused before it starts: the same, and the client reads the larger model's.
  let text = "";
  for await (const chunk of await openai().chat.completions.create(ask("refused", "hi", { stream: true }))) text += chunk.choices[0]?.delta?.content ?? "";
  assert.equal(text, "Hello, world! ünïcødé ✓");
  assert.deepEqual([calls("ctx-refuse-openai"), calls("ctx-8k"), calls("ctx-200k")], [before[0] + 2, before[1], before[2] + 3]);
  // The breaker did not count the refusals: the refusing model is still tried first.
  await openai().chat.completions.create(ask("refused", "hi"));
  assert.equal(calls("ctx-refuse-openai"), before[0] + 3);
});

test("nothing that fits: a 400 context_length_exceeded naming the estimate and the largest window, no call", async () => {
  const small = calls("ctx-1k");
  const e = await openai().chat.completions.create(ask("small", LONG)).catch((e) => e);
  assert.ok(e instanceof OpenAI.BadRequestError, String(e));
  assert.equal(e.code, "context_length_exceeded");
  assert.match(e.message, /at least \d+ input tokens/);
  assert.match(e.message, /largest context window is 1000 tokens/);
  assert.equal(calls("ctx-1k"), small);
  const a = await anthropic().messages.create(ask("small", LONG)).catch((e) => e);
  assert.ok(a instanceof Anthropic.BadRequestError, String(a));
  assert.equal(a.error.error.type, "invalid_request_error");
});

test("a route's context_fallbacks serve a request too large for its targets, and never one its target failed", async () => {
  const [small, big] = [calls("ctx-1k"), calls("ctx-200k")];
  const { response } = await openai().chat.completions.create(ask("escalating", LONG)).withResponse();
  assert.equal(response.headers.get("x-gateway-model"), "ctx-200k");
  assert.deepEqual([calls("ctx-1k"), calls("ctx-200k")], [small, big + 1]);
  // A short request stays on the route's own target.
  const short = await openai().chat.completions.create(ask("escalating", "hi")).withResponse();
  assert.equal(short.response.headers.get("x-gateway-model"), "ctx-1k");
  // A failing target is not escalated: the fallback is for size.
  const e = await openai().chat.completions.create(ask("not-for-errors", "hi")).catch((e) => e);
  assert.ok(e instanceof OpenAI.APIError && e.status === 502, String(e));
  assert.equal(calls("ctx-200k"), big + 1, "the context fallback was not called after a 500");
});

test("a model with no price is refused to a payer with a budget, served to one without, and priced by the tenant's models", async () => {
  const sent = llm.requests.length;
  const e = await openai(budgetedKey).chat.completions.create(ask("unpriced", "hi")).catch((e) => e);
  assert.ok(e instanceof OpenAI.PermissionDeniedError, String(e));
  assert.match(e.message, /unpriced-ok/);
  assert.match(e.message, /`catalog`|`models`/);
  const a = await anthropic(budgetedKey).messages.create(ask("unpriced-claude", "hi")).catch((e) => e);
  assert.ok(a instanceof Anthropic.PermissionDeniedError, String(a));
  assert.equal(a.error.error.type, "permission_error");
  assert.equal(llm.requests.length, sent, "no provider was called");
  // Without a budget it is served, with no cost to report.
  const { response } = await openai().chat.completions.create(ask("unpriced", "hi")).withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-gateway-cost-usd"), null);
  // The tenant prices it: the budgeted key is served and charged at the tenant's price.
  const r = await gw.admin("PUT", `${T}/llm`, { providers: providers(), routes, models: { "oai/unpriced-ok": { input_per_mtok: 1, output_per_mtok: 2 } } });
  assert.equal(r.status, 200, r.text);
  const priced = await openai(budgetedKey).chat.completions.create(ask("unpriced", "hi")).withResponse();
  // The stand-in counts 25 input and 15 output tokens: 25 × $1 + 15 × $2 per million.
  assert.equal(priced.response.headers.get("x-gateway-cost-usd"), "0.000055000");
});

test("the tenant's models are checked when saved", async () => {
  for (const [models, msg] of [
    [{ "nobody/x": { input_per_mtok: 1, output_per_mtok: 1 } }, /nobody/],
    [{ "oai/x": { input_per_mtok: -1 } }, /input_per_mtok/],
    [{ "oai/x": { context_window: 1000, max_output_tokens: 4000 } }, /max_output_tokens/],
    [{ "oai/x": { price: 1 } }, /price/],
  ]) {
    const r = await gw.admin("PUT", `${T}/llm`, { providers: providers(), routes, models });
    assert.equal(r.status, 422, `${JSON.stringify(models)}: ${r.text}`);
    assert.match(r.body.error.message, msg);
  }
  const bad = await gw.admin("PUT", `${T}/llm`, { providers: providers(), routes: { r: { targets: [oai("m")], context_fallbacks: [{ provider: "nobody", model: "m" }] } } });
  assert.equal(bad.status, 422, bad.text);
  assert.match(bad.body.error.message, /context_fallbacks/);
});

test("GET /v1/models lists each alias's window, output maximum, modalities, features and prices, in either SDK's shape", async () => {
  const listed = [];
  for await (const m of openai().models.list()) listed.push(m);
  const big = listed.find((m) => m.id === "big");
  assert.ok(big, listed.map((m) => m.id).join());
  assert.equal(big.object, "model");
  assert.equal(big.context_window, 200000);
  assert.equal(big.max_output_tokens, 64000);
  assert.deepEqual(big.modalities, { input: ["text", "image"], output: ["text"] });
  assert.deepEqual(big.features, ["tools", "vision"]);
  assert.deepEqual(big.pricing, { input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3 });
  assert.deepEqual(big.targets, ["oai/ctx-200k"]);
  // An alias can hold what its largest reachable target holds, context fallbacks included.
  assert.equal(listed.find((m) => m.id === "escalating").context_window, 200000);
  assert.equal(listed.find((m) => m.id === "oai/ctx-1k").context_window, 1000);
  // Anthropic's SDK: its own names for the window and output maximum, and the same extras.
  const page = await anthropic().models.list();
  const a = page.data.find((m) => m.id === "big");
  assert.equal(a.type, "model");
  assert.equal(a.max_input_tokens, 200000);
  assert.equal(a.max_tokens, 64000);
  assert.equal(a.context_window, 200000);
  assert.deepEqual(a.pricing, big.pricing);
});

test("GET /v1/models lists only the models the calling key may use", async () => {
  const r = await gw.admin("POST", `${T}/keys`, { scopes: ["*"], allowed_models: ["big"] });
  assert.equal(r.status, 201, r.text);
  const restricted = r.body.key;
  planted.add(restricted);
  const listed = [];
  for await (const m of openai(restricted).models.list()) listed.push(m.id);
  assert.deepEqual(listed, ["big"]);
  const page = await anthropic(restricted).models.list();
  assert.deepEqual(page.data.map((m) => m.id), ["big"]);
  // The same rule as its requests: another alias is refused before any call.
  await assert.rejects(openai(restricted).chat.completions.create(ask("small", "hi")), (e) => e.status === 403);
});

test("on a seeded gateway the shipped catalog sizes and prices a tenant's route", async () => {
  const shipped = JSON.parse(readFileSync(new URL("../../kv-seed/catalog.json", import.meta.url), "utf8")).models;
  const entry = shipped["claude-sonnet-4-5"];
  const seeded = await startGateway();
  try {
    const { key: k } = await seeded.tenant("shipped");
    const r = await seeded.admin("PUT", "shipped/llm", { providers: providers(), routes: { sonnet: [claude("claude-sonnet-4-5")] } });
    assert.equal(r.status, 201, r.text);
    const listed = await seeded.request("GET", "/v1/models", { key: k });
    const sonnet = listed.body.data.find((m) => m.id === "sonnet");
    assert.ok(entry.context_window >= 200000, "the shipped window");
    assert.equal(sonnet.context_window, entry.context_window);
    assert.equal(sonnet.max_output_tokens, entry.max_output_tokens);
    assert.ok(sonnet.pricing.cache_read_per_mtok < sonnet.pricing.input_per_mtok);
    // A request is priced from it: the stand-in counts 25 input and 15 output tokens.
    const { response } = await new Anthropic({ apiKey: k, baseURL: seeded.url.origin, maxRetries: 0 }).messages.create(ask("sonnet", "hi")).withResponse();
    const pico = 25 * Math.round(entry.input_per_mtok * 1e6) + 15 * Math.round(entry.output_per_mtok * 1e6);
    assert.equal(response.headers.get("x-gateway-cost-usd"), (Math.round(pico / 1000) / 1e9).toFixed(9));
  } finally {
    await seeded.stop();
  }
});
