// The exact cost ledger end to end, with the official SDKs: prompt caching and reasoning, as each
// provider reports them (tests/mocks/llm_usage.mjs replays the recorded usage shapes), are charged
// at their own rates, to the nano-dollar, alike in the `x-gateway-cost-usd` header, the usage
// record, the usage API (the classes as columns), the Analytics Engine point and a key's budget;
// a stream costs what its whole answer does; a client of another dialect is told its cached
// input in its own words.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startGateway, planted } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-upstream-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm;

// Sonnet's rates: 3 in, 15 out, 0.30 a cache read, 3.75 a 5-minute write, 6 an hour's. The
// cached-claude answer: 50 fresh, 10,000 read, 1,000 + 2,000 written, 400 out:
// 150 + 3,000 + 3,750 + 12,000 + 6,000 = 24,900 µUSD (45,150 µUSD were it all input).
const CLAUDE = { input_per_mtok: 3, output_per_mtok: 15, cache_read_per_mtok: 0.3, cache_write_per_mtok: 3.75, cache_write_1h_per_mtok: 6 };
const CLAUDE_COST = "0.024900000";
// gpt-4o's: 2.5 in, 1.25 cached, 10 out. cached-gpt: 2,006 prompt of which 1,920 cached, 300 out:
// 86 x 2.5 + 1,920 x 1.25 + 300 x 10 = 5,615 µUSD.
const GPT = { input_per_mtok: 2.5, cache_read_per_mtok: 1.25, output_per_mtok: 10 };
const GPT_COST = "0.005615000";
// o4-mini's: 1.10 in, 0.275 cached, 4.40 out. cached-o4: 5,000 input of which 4,096 cached, 800
// output of which 640 reasoning: 904 x 1.10 + 4,096 x 0.275 + 800 x 4.40 = 5,640.8 µUSD.
// Reasoning has a rate of its own here (5.5, not output's 4.4), so a ledger that priced it as
// output would miss: 904 x 1.1 + 4096 x 0.275 + 160 x 4.4 + 640 x 5.5 = 6344.8 µUSD.
const O4 = { input_per_mtok: 1.1, cache_read_per_mtok: 0.275, output_per_mtok: 4.4, reasoning_per_mtok: 5.5 };
const O4_COST = "0.006344800";

before(async () => {
  gw = await startGateway({ seed: false, recordAnalytics: true });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:cached-claude", JSON.stringify(CLAUDE));
  await kv.put("pricing:cached-gpt", JSON.stringify(GPT));
  await kv.put("pricing:cached-o4", JSON.stringify(O4));
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

/** A tenant with both providers at the stand-in, and a key with a budget; returns both keys. */
async function tenant(name) {
  const t = await gw.tenant(name);
  const r = await gw.admin("PUT", `${name}/llm`, {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
    },
    routes: {
      claude: [{ provider: "claude", model: "cached-claude" }],
      gpt: [{ provider: "oai", model: "cached-gpt" }],
      o4: [{ provider: "oai", model: "cached-o4" }],
    },
  });
  assert.equal(r.status, 201, r.text);
  const k = await gw.admin("POST", `${name}/keys`, { name: "budgeted", scopes: ["*"], budget: { monthly_usd: 1 } });
  assert.equal(k.status, 201, k.text);
  planted.add(k.body.key);
  return { ...t, budgeted: k.body.key };
}

const openai = (key) => new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
const anthropic = (key) => new Anthropic({ apiKey: key, baseURL: gw.url.origin, maxRetries: 0 });
const ask = [{ role: "user", content: "What does the brief say?" }];

/** The key's monthly spend once nothing is reserved any more (charges settle after the response). */
async function spent(key) {
  for (let i = 0; ; i++) {
    const me = await gw.request("GET", "/v1/me", { key });
    assert.equal(me.status, 200, me.text);
    const month = me.body.budget.key.monthly;
    if (month.reserved_usd === 0 || i > 100) return month.spent_usd;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The tenant's usage row of `model` once it has counted `requests` of it. */
async function usageRow(key, model, requests) {
  for (let i = 0; ; i++) {
    const r = await gw.request("GET", "/v1/usage?group_by=model", { key });
    assert.equal(r.status, 200, r.text);
    const row = r.body.data.find((d) => d.model === model);
    if (row?.requests === requests || i > 150) return row;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The `llm_usage` record of the request `id`. */
async function record(id) {
  const line = await gw.waitForLog((m) => m.includes(id) && m.includes('"llm_usage"'));
  assert.ok(line, `a usage record for ${id}`);
  return JSON.parse(line.message).llm_usage;
}

test("a cached Anthropic call is charged the discounted amount: header, usage record, usage API, Analytics Engine and budget", async () => {
  const t = await tenant("ledger-claude");
  const { data, response } = await anthropic(t.budgeted).messages.create({ model: "claude", max_tokens: 500, messages: ask }).withResponse();
  assert.equal(response.headers.get("x-gateway-cost-usd"), CLAUDE_COST);
  // The client gets Anthropic's own usage, its cache figures included.
  assert.deepEqual(
    [data.usage.input_tokens, data.usage.cache_read_input_tokens, data.usage.cache_creation_input_tokens, data.usage.output_tokens],
    [50, 10000, 3000, 400],
  );
  const usage = await record(response.headers.get("x-request-id"));
  assert.equal(usage.cost_usd, 0.0249);
  assert.deepEqual(usage.tokens, { cache_read: 10000, cache_write: 3000, cache_write_1h: 2000 });
  assert.equal(await spent(t.budgeted), 0.0249, "the key's budget is charged the exact cost");
  const row = await usageRow(t.key, "cached-claude", 1);
  assert.deepEqual(
    [row.input_tokens, row.fresh_input_tokens, row.cache_read_tokens, row.cache_write_tokens, row.output_tokens, row.cost_usd],
    [13050, 50, 10000, 3000, 400, 0.0249],
    JSON.stringify(row),
  );
  // The data point: input, output and cost, then fresh, read, written, reasoning, media.
  const [point] = gw.points().filter((p) => p.indexes[0] === "ledger-claude" && p.blobs[3] === "cached-claude");
  assert.deepEqual(point.doubles.slice(2, 5), [13050, 400, 0.0249]);
  assert.deepEqual(point.doubles.slice(6), [50, 10000, 3000, 0, 0]);
});

test("a cached OpenAI call, JSON and streamed with include_usage, is charged the cached rate alike", async () => {
  const t = await tenant("ledger-gpt");
  const client = openai(t.budgeted);
  const { data, response } = await client.chat.completions.create({ model: "gpt", messages: ask }).withResponse();
  assert.equal(response.headers.get("x-gateway-cost-usd"), GPT_COST);
  assert.equal(data.usage.prompt_tokens_details.cached_tokens, 1920);
  const stream = await client.chat.completions.create({ model: "gpt", messages: ask, stream: true, stream_options: { include_usage: true } }).withResponse();
  let last;
  for await (const chunk of stream.data) last = chunk;
  assert.equal(last.usage.prompt_tokens_details.cached_tokens, 1920, "the usage chunk reaches the client as sent");
  const streamed = await record(stream.response.headers.get("x-request-id"));
  assert.equal(streamed.stream, true);
  assert.equal(streamed.cost_usd, 0.005615, "a stream costs what its JSON answer does");
  assert.deepEqual(streamed.tokens, { cache_read: 1920 });
  assert.equal(await spent(t.budgeted), 0.01123);
  const row = await usageRow(t.key, "cached-gpt", 2);
  assert.deepEqual([row.cache_read_tokens, row.fresh_input_tokens, row.cost_usd], [3840, 172, 0.01123], JSON.stringify(row));
});

test("a Responses call with cached input and reasoning is charged each at its rate", async () => {
  const t = await tenant("ledger-o4");
  const client = openai(t.key);
  const { data, response } = await client.responses.create({ model: "o4", input: "hi" }).withResponse();
  assert.equal(response.headers.get("x-gateway-cost-usd"), O4_COST);
  assert.equal(data.usage.input_tokens_details.cached_tokens, 4096);
  assert.equal(data.usage.output_tokens_details.reasoning_tokens, 640);
  const stream = await client.responses.create({ model: "o4", input: "hi", stream: true }).withResponse();
  let completed;
  for await (const ev of stream.data) if (ev.type === "response.completed") completed = ev;
  assert.equal(completed?.response.usage.input_tokens_details.cached_tokens, 4096, "the stream completed with its usage");
  const streamed = await record(stream.response.headers.get("x-request-id"));
  assert.equal(streamed.cost_usd, 0.0063448);
  assert.deepEqual(streamed.tokens, { cache_read: 4096, reasoning: 640 });
  const row = await usageRow(t.key, "cached-o4", 2);
  assert.deepEqual([row.cache_read_tokens, row.reasoning_tokens], [8192, 1280], JSON.stringify(row));
});

test("an OpenAI client on a cached Anthropic upstream is told its cached input and pays the same", async () => {
  const t = await tenant("ledger-translated");
  const client = openai(t.budgeted);
  const { data, response } = await client.chat.completions.create({ model: "claude", messages: ask }).withResponse();
  assert.equal(response.headers.get("x-gateway-cost-usd"), CLAUDE_COST);
  assert.equal(data.usage.prompt_tokens, 13050, "OpenAI's prompt_tokens count the cached ones");
  assert.equal(data.usage.prompt_tokens_details.cached_tokens, 10000);
  const stream = await client.chat.completions.create({ model: "claude", messages: ask, stream: true, stream_options: { include_usage: true } }).withResponse();
  let last;
  for await (const chunk of stream.data) last = chunk;
  assert.equal(last.usage.prompt_tokens_details.cached_tokens, 10000);
  const streamed = await record(stream.response.headers.get("x-request-id"));
  assert.equal(streamed.cost_usd, 0.0249);
  assert.equal(await spent(t.budgeted), 0.0498);
});
