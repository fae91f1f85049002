// The LLM proxy end to end: both dialects in and out, streamed and not, against local servers
// speaking OpenAI's and Anthropic's wire formats; fallback on 429/500/timeout/early stream
// errors; mid-stream failure surfaced as an error; rate limits; breaker; usage and cost; and the
// official `openai` and `@anthropic-ai/sdk` clients pointed at the gateway.
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
let gw, llm, key;

function llmConfig(extra = {}) {
  return {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
      mock: { kind: "mock" },
    },
    routes: {
      gpt: [{ provider: "oai", model: "gpt-ok" }],
      claude: [{ provider: "claude", model: "claude-ok" }],
      "fb-429": [{ provider: "oai", model: "fail-429", retries: 1 }, { provider: "claude", model: "claude-ok" }],
      "fb-500": [{ provider: "claude", model: "fail-500", retries: 0 }, { provider: "oai", model: "gpt-ok" }],
      "fb-timeout": [{ provider: "oai", model: "slow", timeout_ms: 300 }, { provider: "claude", model: "claude-ok" }],
      "fb-stream": [{ provider: "claude", model: "error-start", retries: 0 }, { provider: "oai", model: "gpt-ok" }],
      midstream: [{ provider: "claude", model: "midstream" }, { provider: "oai", model: "gpt-ok" }],
      "midstream-openai": [{ provider: "oai", model: "midstream" }, { provider: "claude", model: "claude-ok" }],
      flaky: [{ provider: "claude", model: "flaky-1", retries: 2 }],
      echo: [{ provider: "mock", model: "mock-echo" }],
    },
    ...extra,
  };
}

async function llmTenant(name, extra) {
  const t = await gw.tenant(name);
  const r = await gw.admin("PUT", `${name}/llm`, llmConfig(extra));
  assert.equal(r.status, 201, r.text);
  return t.key;
}

before(async () => {
  gw = await startGateway({ extraBindings: { MOCK_STREAM_DELAY_MS: "1" } });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  key = await llmTenant("ai");
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:gpt-ok", JSON.stringify({ input_per_mtok: 2.5, output_per_mtok: 10 }));
  await kv.put("pricing:claude-ok", JSON.stringify({ input_per_mtok: 3, output_per_mtok: 15 }));
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

const user = (content) => [{ role: "user", content }];
const chat = (json, k = key) => gw.request("POST", "/v1/chat/completions", { key: k, json });
const messages = (json, k = key) => gw.request("POST", "/v1/messages", { json, headers: { "x-api-key": k, "anthropic-version": "2023-06-01" } });

/** SSE text -> [{event, data}] with data parsed when it is JSON. */
function sse(text) {
  return text.split("\n\n").filter((b) => b.trim()).map((block) => {
    let event = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event: ")) event = line.slice(7);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
    }
    const raw = data.join("\n");
    let parsed = raw;
    try { parsed = JSON.parse(raw); } catch {}
    return { event, data: parsed };
  });
}
const openaiText = (evs) => evs.filter((e) => e.data?.choices?.length).map((e) => e.data.choices[0].delta.content ?? "").join("");
const anthropicText = (evs) => evs.filter((e) => e.event === "content_block_delta" && e.data.delta.type === "text_delta").map((e) => e.data.delta.text).join("");

test("OpenAI request to an OpenAI upstream: answer, provider headers, usage and cost", async () => {
  const r = await chat({ model: "gpt", messages: user("hi") });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.choices[0].message.content, "Hello, world! ünïcødé ✓");
  assert.equal(r.headers.get("x-gateway-provider"), "oai");
  assert.equal(r.headers.get("x-gateway-model"), "gpt-ok");
  assert.equal(r.headers.get("x-gateway-attempts"), "1");
  assert.equal(r.headers.get("x-gateway-cost-usd"), ((25 * 2.5 + 15 * 10) / 1e6).toFixed(9));
  assert.ok(r.headers.get("x-request-id"));
  // The upstream saw its own model name and the tenant's sealed provider key, opened.
  assert.equal(llm.last().body.model, "gpt-ok");
  assert.equal(llm.last().headers.authorization, `Bearer ${OPENAI_KEY}`);
  const line = await gw.waitForLog((m) => m.includes(r.headers.get("x-request-id")) && m.includes("llm_usage"));
  assert.ok(line, "a usage record is logged");
  assert.deepEqual(JSON.parse(line.message).llm_usage, { provider: "oai", model: "gpt-ok", attempts: 1, stream: false, input_tokens: 25, output_tokens: 15, cost_usd: (25 * 2.5 + 15 * 10) / 1e6, outcome: "ok" });
});

test("OpenAI request to an Anthropic upstream is translated both ways", async () => {
  const r = await chat({ model: "claude", messages: [{ role: "system", content: "Be brief." }, ...user("hi")], stop: "END", temperature: 1.6 });
  assert.equal(r.status, 200, r.text);
  const sent = llm.last();
  assert.equal(sent.path, "/v1/messages");
  assert.equal(sent.body.system, "Be brief.");
  assert.equal(sent.body.max_tokens, 4096);
  assert.equal(sent.body.temperature, 1);
  assert.deepEqual(sent.body.stop_sequences, ["END"]);
  assert.equal(r.body.object, "chat.completion");
  assert.equal(r.body.choices[0].message.content, "Hello, world! ünïcødé ✓");
  assert.equal(r.body.choices[0].finish_reason, "stop");
  assert.deepEqual(r.body.usage, { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 });
  assert.equal(r.headers.get("x-gateway-cost-usd"), ((25 * 3 + 15 * 15) / 1e6).toFixed(9));
});

test("Anthropic request to an OpenAI upstream, with tools, translated both ways", async () => {
  const tools = [{ name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { location: { type: "string" } } } }, { name: "get_time", input_schema: { type: "object" } }];
  const r = await messages({ model: "gpt", max_tokens: 200, system: "Use tools.", messages: user("weather and time?"), tools, tool_choice: { type: "any" } });
  assert.equal(r.status, 200, r.text);
  const sent = llm.last();
  assert.equal(sent.path, "/v1/chat/completions");
  assert.deepEqual(sent.body.messages[0], { role: "system", content: "Use tools." });
  assert.equal(sent.body.tools[0].function.name, "get_weather");
  assert.equal(sent.body.tool_choice, "required");
  assert.equal(r.body.type, "message");
  assert.equal(r.body.stop_reason, "tool_use");
  assert.deepEqual(r.body.content.map((b) => [b.type, b.name, b.input]), [["tool_use", "get_weather", { location: "San Francisco, CA" }], ["tool_use", "get_time", {}]]);
  assert.deepEqual(r.body.usage, { input_tokens: 25, output_tokens: 15 });
});

test("streams translated chunk by chunk, with usage, both directions", async () => {
  const a = await chat({ model: "claude", messages: user("hi"), stream: true, stream_options: { include_usage: true } });
  assert.equal(a.status, 200, a.text);
  assert.match(a.headers.get("content-type"), /^text\/event-stream/);
  const evs = sse(a.text);
  assert.equal(evs[0].data.choices[0].delta.role, "assistant");
  assert.equal(openaiText(evs), "Hello, world! ünïcødé ✓");
  assert.deepEqual(evs.at(-2).data.usage, { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 });
  assert.equal(evs.at(-1).data, "[DONE]");

  const b = await messages({ model: "gpt", max_tokens: 100, messages: user("hi"), stream: true });
  assert.equal(b.status, 200, b.text);
  assert.equal(llm.last().body.stream_options.include_usage, true, "the gateway asks OpenAI-style upstreams for usage");
  const ev2 = sse(b.text);
  assert.deepEqual(ev2.map((e) => e.event), ["message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]);
  assert.equal(anthropicText(ev2), "Hello, world! ünïcødé ✓");
  assert.deepEqual(ev2.at(-2).data.usage, { input_tokens: 25, output_tokens: 15 });

  // Same dialect, client did not ask for usage: no usage chunk, [DONE] still ends it.
  const c = await chat({ model: "gpt", messages: user("hi"), stream: true });
  const ev3 = sse(c.text);
  assert.ok(!ev3.some((e) => e.data?.usage), c.text);
  assert.equal(ev3.at(-1).data, "[DONE]");
});

test("fallback before first content: 429 (retried, then next target), 500, timeout, error event", async () => {
  const before429 = llm.counts["fail-429"] ?? 0;
  const r1 = await chat({ model: "fb-429", messages: user("hi") });
  assert.equal(r1.status, 200, r1.text);
  assert.equal(r1.headers.get("x-gateway-provider"), "claude");
  assert.equal(r1.headers.get("x-gateway-attempts"), "3");
  assert.equal(llm.counts["fail-429"] - before429, 2, "one retry honouring retry-after-ms, then fall over");

  const r2 = await messages({ model: "fb-500", max_tokens: 50, messages: user("hi"), stream: true });
  assert.equal(r2.status, 200, r2.text);
  assert.equal(r2.headers.get("x-gateway-provider"), "oai");
  assert.equal(anthropicText(sse(r2.text)), "Hello, world! ünïcødé ✓");

  const t0 = Date.now();
  const r3 = await chat({ model: "fb-timeout", messages: user("hi"), stream: true });
  assert.equal(r3.status, 200, r3.text);
  assert.equal(r3.headers.get("x-gateway-provider"), "claude");
  assert.ok(Date.now() - t0 < 1900, "the slow target was abandoned at its timeout");

  const r4 = await chat({ model: "fb-stream", messages: user("hi"), stream: true });
  assert.equal(r4.status, 200, r4.text);
  assert.equal(r4.headers.get("x-gateway-provider"), "oai");
  assert.equal(r4.headers.get("x-gateway-attempts"), "2");
  assert.equal(openaiText(sse(r4.text)), "Hello, world! ünïcødé ✓");

  const r5 = await messages({ model: "flaky", max_tokens: 50, messages: user("hi") });
  assert.equal(r5.status, 200, r5.text);
  assert.equal(r5.headers.get("x-gateway-attempts"), "2");
});

test("a stream that fails after content ends with an error event, never a normal end, no fallback", async () => {
  const okBefore = llm.counts["gpt-ok"] ?? 0;
  const a = await messages({ model: "midstream", max_tokens: 50, messages: user("hi"), stream: true });
  assert.equal(a.status, 200);
  const ev = sse(a.text);
  assert.equal(anthropicText(ev), "Partial ans");
  assert.equal(ev.at(-1).event, "error");
  assert.match(ev.at(-1).data.error.message, /Overloaded/);
  assert.ok(!ev.some((e) => e.event === "message_stop"));

  const b = await chat({ model: "midstream-openai", messages: user("hi"), stream: true });
  const ev2 = sse(b.text);
  assert.equal(openaiText(ev2), "Partial ans");
  assert.ok(ev2.at(-1).data.error, b.text);
  assert.ok(!ev2.some((e) => e.data === "[DONE]"));
  assert.equal(llm.counts["gpt-ok"] ?? 0, okBefore, "content was sent: no fallback");
  const line = await gw.waitForLog((m) => m.includes(b.headers.get("x-request-id")) && m.includes("llm_usage"));
  assert.equal(JSON.parse(line.message).llm_usage.outcome, "failed_midstream");
});

test("requests per minute: exactly the limit, then 429 with Retry-After and x-ratelimit headers", async () => {
  const k = await llmTenant("ai-rpm", { limits: { rpm: 3 } });
  const results = await Promise.all(Array.from({ length: 6 }, () => chat({ model: "echo", messages: user("x") }, k)));
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 200, 200, 429, 429, 429]);
  const limited = results.find((r) => r.status === 429);
  assert.equal(limited.body.error.type, "rate_limit_error");
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  assert.equal(limited.headers.get("x-ratelimit-limit-requests"), "3");
  assert.equal(limited.headers.get("x-ratelimit-remaining-requests"), "0");
  const ok = results.find((r) => r.status === 200);
  assert.equal(ok.headers.get("x-ratelimit-limit-requests"), "3");
  const anth = await messages({ model: "echo", max_tokens: 10, messages: user("x") }, k);
  assert.equal(anth.status, 429);
  assert.equal(anth.body.type, "error");
  assert.equal(anth.body.error.type, "rate_limit_error");
});

test("tokens per minute: estimate charged up front, corrected with real usage", async () => {
  const k = await llmTenant("ai-tpm", { limits: { tpm: 3000 } });
  const big = { model: "gpt", messages: user("hi"), max_tokens: 2000 };
  const first = await chat(big, k);
  assert.equal(first.status, 200, first.text);
  assert.ok(Number(first.headers.get("x-ratelimit-remaining-tokens")) < 1000);
  await new Promise((r) => setTimeout(r, 300)); // the correction lands after the answer
  // Without the correction (2000+ estimated twice > 3000) this would be refused.
  const second = await chat(big, k);
  assert.equal(second.status, 200, second.text);
  const third = await chat({ ...big, max_tokens: 2950 }, k);
  assert.equal(third.status, 429);
  assert.match(third.body.error.message, /tokens/);
  // A request that no minute could ever admit is told so, not to wait.
  const never = await chat({ ...big, max_tokens: 3100 }, k);
  assert.equal(never.status, 400, never.text);
  assert.match(never.body.error.message, /more than the tokens limit of 3000 per minute allows/);
});

test("circuit breaker per target: opens after the threshold, then answers 503 without calling", async () => {
  const k = await llmTenant("ai-breaker", { circuit_breaker: { failure_threshold: 2, open_seconds: 60 } });
  await gw.admin("PUT", "ai-breaker/llm", { ...llmConfig({ circuit_breaker: { failure_threshold: 2, open_seconds: 60 } }), routes: { broken: [{ provider: "oai", model: "fail-500", retries: 0 }], safe: [{ provider: "oai", model: "fail-500", retries: 0 }, { provider: "claude", model: "claude-ok" }] } });
  const before = llm.counts["fail-500"] ?? 0;
  for (let i = 0; i < 2; i++) {
    const r = await chat({ model: "broken", messages: user("x") }, k);
    assert.equal(r.status, 502, r.text);
    assert.equal(r.body.error.type, "api_error");
  }
  const open = await chat({ model: "broken", messages: user("x") }, k);
  assert.equal(open.status, 503, open.text);
  assert.match(open.body.error.message, /circuit open/);
  assert.ok(Number(open.headers.get("retry-after")) > 0);
  assert.equal(llm.counts["fail-500"] - before, 2, "an open breaker does not call the upstream");
  // A chain skips the open target and answers from the next one.
  const safe = await chat({ model: "safe", messages: user("x") }, k);
  assert.equal(safe.status, 200, safe.text);
  assert.equal(safe.headers.get("x-gateway-provider"), "claude");
  assert.equal(safe.headers.get("x-gateway-attempts"), "1");
});

test("a target's breaker judges its failure rate: successes between failures keep it closed, a run of failures opens it", async () => {
  // A config stored with the older `failure_threshold`: read as at least 4 calls, half failed.
  const breaker = { circuit_breaker: { failure_threshold: 4, open_seconds: 60 } };
  const k = await llmTenant("ai-ratio", breaker);
  await gw.admin("PUT", "ai-ratio/llm", { ...llmConfig(breaker), routes: { ratio: [{ provider: "oai", model: "flaky-2", retries: 0 }] } });
  const statuses = async (n) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push((await chat({ model: "ratio", messages: user("x") }, k)).status);
    return out;
  };
  assert.deepEqual(await statuses(2), [502, 502]);
  assert.deepEqual(await statuses(8), Array(8).fill(200));
  llm.flaky["flaky-2"] = 0; // two more failures: 4 of 12 calls
  assert.deepEqual(await statuses(2), [502, 502]);
  assert.deepEqual(await statuses(1), [200], "4 failures in 13 calls: still closed, the provider is called");
  // Failing from now on: the fifth failure brings the window to 9 of 18, and it opens.
  llm.flaky["flaky-2"] = -100;
  const before = llm.counts["flaky-2"];
  assert.deepEqual(await statuses(6), [502, 502, 502, 502, 502, 503]);
  assert.equal(llm.counts["flaky-2"] - before, 5, "an open breaker does not call the upstream");
});

test("bad input: 400 in each dialect's error format, never a 500", async () => {
  const cases = [
    [() => gw.request("POST", "/v1/chat/completions", { key, body: "{nope", headers: { "content-type": "application/json" } }), /not valid JSON/],
    [() => chat({ messages: user("x") }), /`model` is required/],
    [() => chat({ model: "gpt" }), /`messages` is required/],
    [() => chat({ model: "no-such-model", messages: user("x") }), /unknown model/],
    [() => chat({ model: "gpt", messages: "hi" }), /must be an array/],
    [() => chat({ model: "gpt", messages: user("x"), stream: "yes" }), /`stream` must be a boolean/],
    [() => chat({ model: "gpt", messages: user("x"), max_tokens: 1e30 }), /max_tokens/],
  ];
  for (const [send, msg] of cases) {
    const r = await send();
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.type, "invalid_request_error");
    assert.match(r.body.error.message, msg);
  }
  const a = await messages({ model: "gpt", messages: user("x") });
  assert.equal(a.status, 400);
  assert.deepEqual([a.body.type, a.body.error.type], ["error", "invalid_request_error"]);
  assert.match(a.body.error.message, /max_tokens/);
  const noAuth = await gw.request("POST", "/v1/messages", { json: { model: "gpt", max_tokens: 5, messages: user("x") } });
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.body.error.type, "authentication_error");
});

test("GET /v1/models lists aliases and provider/model names, in either SDK's format", async () => {
  const r = await gw.request("GET", "/v1/models", { key });
  assert.equal(r.status, 200);
  const ids = r.body.data.map((m) => m.id);
  assert.ok(ids.includes("gpt") && ids.includes("claude/claude-ok"), ids.join());
  const a = await gw.request("GET", "/v1/models", { headers: { "x-api-key": key, "anthropic-version": "2023-06-01" } });
  assert.equal(a.body.data[0].type, "model");
});

test("the official openai client reads streamed and non-streamed replies, tools included", async () => {
  const client = new OpenAI({ apiKey: key, baseURL: new URL("/v1", gw.url).href, maxRetries: 0 });
  const done = await client.chat.completions.create({ model: "claude", messages: user("hi") });
  assert.equal(done.choices[0].message.content, "Hello, world! ünïcødé ✓");
  const stream = await client.chat.completions.create({ model: "claude", messages: user("hi"), stream: true, stream_options: { include_usage: true } });
  let text = "";
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    usage = chunk.usage ?? usage;
  }
  assert.equal(text, "Hello, world! ünïcødé ✓");
  assert.equal(usage.total_tokens, 40);
  const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } } } } }, { type: "function", function: { name: "get_time", parameters: { type: "object" } } }];
  const runner = client.chat.completions.stream({ model: "claude", messages: user("weather?"), tools });
  const final = await runner.finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.deepEqual(calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]), [["get_weather", { location: "San Francisco, CA" }], ["get_time", {}]]);
  assert.equal(final.choices[0].finish_reason, "tool_calls");
  // A mid-stream failure is an error in the SDK, not a silently short answer.
  await assert.rejects(async () => {
    for await (const _ of await client.chat.completions.create({ model: "midstream-openai", messages: user("x"), stream: true }));
  });
});

test("the official @anthropic-ai/sdk client reads streamed and non-streamed replies", async () => {
  const client = new Anthropic({ apiKey: key, baseURL: gw.url.href.replace(/\/$/, ""), maxRetries: 0 });
  const msg = await client.messages.create({ model: "gpt", max_tokens: 100, messages: user("hi") });
  assert.equal(msg.content[0].text, "Hello, world! ünïcødé ✓");
  const stream = client.messages.stream({ model: "claude", max_tokens: 100, messages: user("hi") });
  const pieces = [];
  stream.on("text", (t) => pieces.push(t));
  const final = await stream.finalMessage();
  assert.equal(pieces.join(""), "Hello, world! ünïcødé ✓");
  assert.ok(pieces.length > 1, "text arrived in pieces");
  assert.equal(final.usage.output_tokens, 15);
  const tools = [{ name: "get_weather", input_schema: { type: "object" } }, { name: "get_time", input_schema: { type: "object" } }];
  const toolMsg = await client.messages.stream({ model: "gpt", max_tokens: 100, messages: user("weather?"), tools }).finalMessage();
  assert.deepEqual(toolMsg.content.map((b) => b.input), [{ location: "San Francisco, CA" }, {}]);
  await assert.rejects(client.messages.stream({ model: "midstream", max_tokens: 10, messages: user("x") }).finalMessage());
  await assert.rejects(client.messages.create({ model: "nope", max_tokens: 10, messages: user("x") }), (e) => e.status === 400);
});

test("the mock provider answers from the prompt, streamed, with no external service", async () => {
  const demo = "sk_dev_demo_local_only_0000000000";
  const r = await chat({ model: "default", messages: user("Where is my order?"), stream: true }, demo);
  assert.equal(r.status, 200, r.text);
  const evs = sse(r.text);
  assert.match(openaiText(evs), /Where is my order\?/);
  assert.ok(evs.length > 8, "a word per chunk");
  assert.equal(r.headers.get("x-gateway-provider"), "mock");
});

test("no provider key or tenant key appears in any log line or response", async () => {
  assert.deepEqual(gw.leaks(), []);
  const cfg = await gw.admin("GET", "ai/llm");
  assert.ok(!cfg.text.includes(OPENAI_KEY) && !cfg.text.includes(ANTHROPIC_KEY));
});
