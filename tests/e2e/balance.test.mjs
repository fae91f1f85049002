// Load balancing across a route's targets: weighted spread, sticky sessions, the cheapest and
// the fastest target first, and fallback still working under every strategy. Local servers speak
// OpenAI's and Anthropic's wire formats; the official openai client calls the gateway.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { startGateway, planted } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-upstream-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm, key, client;

const routes = {
  spread: { strategy: "weighted", targets: [
    { provider: "oai", model: "w-a", weight: 70 },
    { provider: "oai", model: "w-b", weight: 20 },
    { provider: "claude", model: "w-c", weight: 10 },
  ] },
  sticky: { strategy: "weighted", targets: ["s-a", "s-b", "s-c", "s-d"].map((model) => ({ provider: "oai", model, weight: 1 })) },
  cheapest: { strategy: "lowest_cost", targets: [
    { provider: "oai", model: "unpriced" },
    { provider: "oai", model: "pricey" },
    { provider: "claude", model: "cheap" },
  ] },
  fastest: { strategy: "lowest_latency", targets: [{ provider: "oai", model: "lat-a" }, { provider: "claude", model: "lat-b" }] },
  "weighted-fallback": { strategy: "weighted", targets: [
    { provider: "oai", model: "fail-500", weight: 1000, retries: 0 },
    { provider: "claude", model: "fb-ok", weight: 1 },
  ] },
};

before(async () => {
  gw = await startGateway();
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  const t = await gw.tenant("balancer");
  key = t.key;
  const r = await gw.admin("PUT", "balancer/llm", {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
    },
    routes,
    limits: { rpm: 100000, tpm: 1000000000 },
    circuit_breaker: { minimum_calls: 1000, window_seconds: 60, open_seconds: 1 },
  });
  assert.equal(r.status, 201, r.text);
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:pricey", JSON.stringify({ input_per_mtok: 5, output_per_mtok: 20 }));
  await kv.put("pricing:cheap", JSON.stringify({ input_per_mtok: 0.1, output_per_mtok: 0.4 }));
  client = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

const ask = (model, extra = {}, headers = {}) =>
  client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 16, ...extra }, { headers });
const counted = (models) => Object.fromEntries(models.map((m) => [m, llm.counts[m] ?? 0]));

test("a weighted route spreads 1,000 requests within 5% of its weights", async () => {
  const before = counted(["w-a", "w-b", "w-c"]);
  let left = 1000;
  const worker = async () => {
    while (left-- > 0) {
      const r = await ask("spread");
      assert.match(r.choices[0].message.content, /Hello/);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const after = counted(["w-a", "w-b", "w-c"]);
  const share = (m) => (after[m] - before[m]) / 1000;
  assert.equal(after["w-a"] + after["w-b"] + after["w-c"] - before["w-a"] - before["w-b"] - before["w-c"], 1000);
  for (const [m, w] of [["w-a", 0.7], ["w-b", 0.2], ["w-c", 0.1]]) {
    assert.ok(Math.abs(share(m) - w) <= 0.05, `${m}: ${share(m)} of the requests, weight ${w}`);
  }
});

test("a session keeps its target: x-gateway-session, or the request's user", async () => {
  const target = async (extra, headers) => {
    const { response } = await ask("sticky", extra, headers).withResponse();
    return response.headers.get("x-gateway-model");
  };
  for (const session of ["conv-1", "conv-2", "conv-3"]) {
    const first = await target({}, { "x-gateway-session": session });
    for (let i = 0; i < 8; i++) assert.equal(await target({}, { "x-gateway-session": session }), first, session);
  }
  const byUser = await target({ user: "user-77" });
  for (let i = 0; i < 8; i++) assert.equal(await target({ user: "user-77" }), byUser);
  // Many sessions use every target.
  const used = new Set();
  for (let i = 0; i < 40; i++) used.add(await target({}, { "x-gateway-session": `s-${i}` }));
  assert.equal(used.size, 4, [...used].join(","));
});

test("lowest_cost calls the cheapest priced target; an unpriced one only as a fallback", async () => {
  for (let i = 0; i < 5; i++) {
    const { response } = await ask("cheapest").withResponse();
    assert.equal(response.headers.get("x-gateway-model"), "cheap");
    assert.equal(response.headers.get("x-gateway-provider"), "claude");
  }
  assert.equal(llm.counts.unpriced ?? 0, 0);
  assert.equal(llm.counts.pricey ?? 0, 0);
});

test("lowest_latency moves away from a target that slows down", async () => {
  llm.delays["lat-b"] = 60;
  const served = async () => (await ask("fastest").withResponse()).response.headers.get("x-gateway-model");
  // Each target is measured once, then the faster one is preferred.
  const warm = [];
  for (let i = 0; i < 6; i++) warm.push(await served());
  assert.ok(warm.includes("lat-b"), `lat-b measured: ${warm}`);
  assert.deepEqual(warm.slice(-3), ["lat-a", "lat-a", "lat-a"], `${warm}`);
  // lat-a slows far below lat-b: after a slow answer or two the traffic moves.
  llm.delays["lat-a"] = 400;
  const later = [];
  for (let i = 0; i < 6; i++) later.push(await served());
  assert.deepEqual(later.slice(-3), ["lat-b", "lat-b", "lat-b"], `${later}`);
  assert.ok(later.filter((m) => m === "lat-a").length <= 2, `${later}`);
});

test("a weighted route still falls over to the next target when the drawn one fails", async () => {
  for (let i = 0; i < 3; i++) {
    const { data, response } = await ask("weighted-fallback").withResponse();
    assert.match(data.choices[0].message.content, /Hello/);
    assert.equal(response.headers.get("x-gateway-model"), "fb-ok");
    assert.equal(response.headers.get("x-gateway-attempts"), "2");
  }
});

test("weights are checked when the config is saved", async () => {
  const put = (route) =>
    gw.admin("PUT", "balancer/llm", { providers: { oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY } }, routes: { r: route } });
  let r = await put({ strategy: "weighted", targets: [{ provider: "oai", model: "m", weight: 0 }] });
  assert.equal(r.status, 422);
  assert.match(r.text, /routes\.r\[0\]\.weight` must be between 1 and 10000/);
  r = await put([{ provider: "oai", model: "m", weight: 5 }]);
  assert.equal(r.status, 422);
  assert.match(r.text, /has no effect: the route's strategy is not `weighted`/);
  r = await put({ strategy: "fastest_please", targets: [{ provider: "oai", model: "m" }] });
  assert.equal(r.status, 422);
  assert.match(r.text, /`routes\.r\.strategy`: unknown variant `fastest_please`/);
  r = await put({ strategy: "weighted", targets: [], extra: 1 });
  assert.equal(r.status, 422);
  assert.match(r.text, /`routes\.r`: unknown field `extra`/);
  // The tenant's routes are unchanged by the refused saves.
  const { response } = await ask("cheapest").withResponse();
  assert.equal(response.headers.get("x-gateway-model"), "cheap");
});
