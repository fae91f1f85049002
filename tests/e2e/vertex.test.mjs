// Google Vertex AI targets end to end, against a stand-in for Google's token endpoint and Vertex's
// model paths (tests/mocks/google.mjs): a service account's key file pasted as it is, its signed
// JWT traded for an access token once and reused, renewed once after a 401, a key Google does not
// know falling over to the next target; Claude and Gemini on Vertex from the OpenAI and Anthropic
// SDKs and the Vercel AI SDK.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText, streamText, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { z } from "zod";
import { startGateway, planted } from "../harness.mjs";
import { chatStream } from "../chat-stream.mjs";
import { startGoogle } from "../mocks/google.mjs";
import { startLlm } from "../mocks/llm.mjs";

const KEY = "upstream-vertex-" + randomBytes(8).toString("hex");
planted.add(KEY);
const T = "vtx";
const PROJECT = "acme-vertex";
const CLAUDE = "claude-sonnet-4-5@20250929";
const HELLO = "Hello, world! ünïcødé ✓";
const weather = { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { location: { type: "string" } } } } };
let gw, google, llm, oai, ant, config;

/** A key file's private key, and each line of it, may appear nowhere. */
function plant(keyFile) {
  planted.add(keyFile.private_key);
  for (const line of keyFile.private_key.split("\n")) if (line.length >= 40) planted.add(line);
}

before(async () => {
  gw = await startGateway();
  google = await startGoogle();
  llm = await startLlm({ openaiKey: KEY, anthropicKey: KEY });
  const sa = google.serviceAccount(PROJECT);
  const stranger = google.serviceAccount(PROJECT, { register: false, name: "unknown" });
  plant(sa);
  plant(stranger);
  const t = await gw.tenant(T);
  const vertex = (serviceAccount) => ({ kind: "vertex", base_url: google.url, location: "us-east5", service_account: serviceAccount });
  config = {
    providers: { vx: vertex(sa), stranger: vertex(stranger), oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: KEY } },
    routes: {
      claude: [{ provider: "vx", model: CLAUDE }],
      gemini: [{ provider: "vx", model: "gemini-2.5-flash" }],
      "stranger-fb": [{ provider: "stranger", model: CLAUDE, retries: 0 }, { provider: "oai", model: "gpt-4o" }],
      stranger: [{ provider: "stranger", model: CLAUDE, retries: 0 }],
      "throttled-fb": [{ provider: "vx", model: "claude-haiku-4-5-throttled", retries: 0 }, { provider: "oai", model: "gpt-4o" }],
    },
  };
  const r = await gw.admin("PUT", `${T}/llm`, config);
  assert.equal(r.status, 201, r.text);
  oai = new OpenAI({ apiKey: t.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  ant = new Anthropic({ apiKey: t.key, baseURL: gw.url.origin, maxRetries: 0 });
  gw.key = t.key;
});
after(async () => {
  // The access tokens it issued are secrets too.
  for (const t of google?.tokens.keys() ?? []) planted.add(t);
  await gw?.stop();
  await google?.close();
  await llm?.close();
});

test("five requests, from three clients, make one token fetch; every Vertex call carries its token", async () => {
  const hi = [{ role: "user", content: "hi" }];
  await oai.chat.completions.create({ model: "claude", messages: hi });
  await oai.chat.completions.create({ model: "gemini", messages: hi });
  await ant.messages.create({ model: "claude", max_tokens: 50, messages: hi });
  await chatStream(await oai.chat.completions.create({ model: "gemini", messages: hi, stream: true }));
  await generateText({ model: createAnthropic({ apiKey: gw.key, baseURL: `${gw.url.origin}/v1` })("claude"), prompt: "hi", maxRetries: 0 });
  assert.equal(google.seen.token_fetches, 1, JSON.stringify(google.seen));
  assert.equal(google.requests.length, 5);
  const bearers = new Set(google.requests.map((r) => r.headers.authorization));
  assert.equal(bearers.size, 1);
  assert.match([...bearers][0], /^Bearer ya29\./);
  assert.equal(google.seen.unauthenticated, 0);
  // The tenant's token is held in KV TOKENS under its LLM holder.
  const kv = await gw.mf.getKVNamespace("TOKENS");
  const { keys } = await kv.list({ prefix: `oauth:${T}:~llm:` });
  assert.equal(keys.length, 1);
});

test("a token Google no longer takes (401) is renewed once and the request sent again", async () => {
  const r = await fetch(`${google.url}/__expire`, { method: "POST" });
  assert.equal(r.status, 200);
  const sent = google.requests.length;
  const { data, response } = await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(data.choices[0].message.content, HELLO);
  assert.equal(response.headers.get("x-gateway-attempts"), "1", "within the one attempt");
  assert.equal(google.seen.unauthenticated, 1);
  assert.equal(google.seen.token_fetches, 2, "two fetches in all");
  assert.equal(google.requests.length, sent + 1, "the resend reached Vertex");
  // The new token serves what follows.
  await oai.chat.completions.create({ model: "gemini", messages: [{ role: "user", content: "hi" }] });
  assert.equal(google.seen.token_fetches, 2);
});

test("OpenAI SDK to Claude on Vertex: JSON, stream and tools, at Claude's Vertex address", async () => {
  const c = await oai.chat.completions.create({ model: "claude", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }], max_tokens: 50 });
  assert.equal(c.choices[0].message.content, HELLO);
  assert.deepEqual([c.usage.prompt_tokens, c.usage.completion_tokens], [25, 15]);
  let sent = google.last();
  assert.equal(sent.path, `/v1/projects/${PROJECT}/locations/us-east5/publishers/anthropic/models/${CLAUDE}:rawPredict`);
  assert.equal(sent.atLiteral, true, "@ sent as it is");
  assert.equal(sent.body.anthropic_version, "vertex-2023-10-16");
  assert.equal(sent.body.model, undefined);
  assert.equal(sent.body.system, "Be brief.");
  assert.equal(sent.body.max_tokens, 50);
  assert.equal(sent.headers["x-api-key"], undefined);

  const s = await chatStream(await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.text, HELLO);
  assert.ok(s.usage?.completion_tokens > 0, JSON.stringify(s.usage));
  sent = google.last();
  assert.equal(sent.op, "streamRawPredict");
  assert.equal(sent.body.stream, true);

  const tools = await chatStream(await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "Weather and time?" }], tools: [weather], stream: true }));
  assert.deepEqual(tools.calls.map((c) => c.name), ["get_weather", "get_time"]);
  assert.deepEqual(JSON.parse(tools.calls[0].arguments), { location: "San Francisco, CA" });
  assert.equal(tools.finish, "tool_calls");
  assert.equal(google.last().body.tools[0].name, "get_weather");
});

test("Anthropic SDK to Claude on Vertex: a stream, tools, and its beta flags as the header", async () => {
  const final = await ant.messages.stream({ model: "claude", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }, { headers: { "anthropic-beta": "context-1m-2025-08-07" } }).finalMessage();
  assert.equal(final.content[0].text, HELLO);
  const sent = google.last();
  assert.equal(sent.headers["anthropic-beta"], "context-1m-2025-08-07");
  assert.equal(sent.body.anthropic_beta, undefined);
  assert.equal(sent.body.stream, true);

  const input_schema = weather.function.parameters;
  const m = await ant.messages.stream({ model: "claude", max_tokens: 100, messages: [{ role: "user", content: "Weather?" }], tools: [{ name: "get_weather", description: "Weather", input_schema }, { name: "get_time", description: "Time", input_schema: { type: "object", properties: {} } }] }).finalMessage();
  const uses = m.content.filter((b) => b.type === "tool_use");
  assert.deepEqual(uses.map((u) => [u.name, u.input]), [["get_weather", { location: "San Francisco, CA" }], ["get_time", {}]]);
  assert.equal(m.stop_reason, "tool_use");
});

test("Gemini on Vertex: the OpenAI SDK (JSON, stream) and the Vercel AI SDK's streamText with a zod tool; priced from the catalog", async () => {
  const { data, response } = await oai.chat.completions.create({ model: "gemini", messages: [{ role: "user", content: "hi" }], max_tokens: 50 }).withResponse();
  assert.equal(data.choices[0].message.content, HELLO);
  // vertex_ai/gemini-2.5-flash: 25 input tokens at $0.30 and 15 output at $2.50 per million.
  assert.equal(response.headers.get("x-gateway-cost-usd"), "0.000045000");
  let sent = google.last();
  assert.equal(sent.path, `/v1/projects/${PROJECT}/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent`);
  assert.equal(sent.body.generationConfig.maxOutputTokens, 50);
  assert.equal(sent.headers["x-goog-api-key"], undefined);

  const s = await chatStream(await oai.chat.completions.create({ model: "gemini", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.text, HELLO);
  assert.equal(s.usage.completion_tokens, 15);
  assert.equal(google.last().op, "streamGenerateContent?alt=sse");

  const openai = createOpenAI({ apiKey: gw.key, baseURL: `${gw.url.origin}/v1` });
  const result = streamText({
    model: openai.chat("gemini"),
    prompt: "Weather and time in SF?",
    tools: {
      get_weather: tool({ description: "Weather", inputSchema: z.object({ location: z.string() }) }),
      get_time: tool({ description: "Time", inputSchema: z.object({}) }),
    },
    maxRetries: 0,
  });
  const calls = await result.toolCalls;
  assert.deepEqual(calls.map((c) => [c.toolName, c.input]), [["get_weather", { location: "San Francisco, CA" }], ["get_time", {}]]);
  sent = google.last();
  assert.deepEqual(sent.body.tools[0].functionDeclarations.map((f) => f.name), ["get_weather", "get_time"]);
});

test("the Vercel AI SDK's generateText to Claude on Vertex", async () => {
  const openai = createOpenAI({ apiKey: gw.key, baseURL: `${gw.url.origin}/v1` });
  const g = await generateText({ model: openai.chat("claude"), prompt: "hi", maxRetries: 0 });
  assert.equal(g.text, HELLO);
  assert.deepEqual([g.usage.inputTokens, g.usage.outputTokens], [25, 15]);
  assert.equal(google.last().op, "rawPredict");
});

test("a key Google does not know: its token endpoint refuses, and the next target answers (else a 502)", async () => {
  const refusals = () => google.seen.token_refusals["Invalid grant: account not found"] ?? 0;
  const before = refusals();
  const sent = google.requests.length;
  const { data, response } = await oai.chat.completions.create({ model: "stranger-fb", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(data.choices[0].message.content, HELLO);
  assert.equal(response.headers.get("x-gateway-provider"), "oai");
  assert.equal(refusals(), before + 1, "the token endpoint refused it");
  assert.equal(google.requests.length, sent, "Vertex was never called without a token");

  await assert.rejects(oai.chat.completions.create({ model: "stranger", messages: [{ role: "user", content: "hi" }] }), (e) => {
    assert.equal(e.status, 502);
    assert.match(e.message, /no access token for its service account \(token endpoint answered 400\)/);
    assert.doesNotMatch(e.message, /account not found/, "Google's words stay out");
    return true;
  });
  // A throttled Vertex model (429 RESOURCE_EXHAUSTED) falls over too.
  const t = await oai.chat.completions.create({ model: "throttled-fb", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(t.response.headers.get("x-gateway-provider"), "oai");
});

test("GET shows the private key only as set; a PUT or DELETE of the LLM configuration forgets its tokens", async () => {
  const g = await gw.admin("GET", `${T}/llm`);
  assert.equal(g.status, 200, g.text);
  const sa = g.body.providers.vx.service_account;
  assert.deepEqual(sa.private_key, { set: true });
  assert.equal(sa.client_email, config.providers.vx.service_account.client_email);
  assert.doesNotMatch(g.text, /PRIVATE KEY/);

  const kv = await gw.mf.getKVNamespace("TOKENS");
  const held = async () => (await kv.list({ prefix: `oauth:${T}:~llm:` })).keys.length;
  assert.equal(await held(), 1);
  const r = await gw.admin("PUT", `${T}/llm`, config);
  assert.equal(r.status, 200, r.text);
  assert.equal(await held(), 0, "a PUT forgets the tokens KV held");
  await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "hi" }] });
  assert.equal(await held(), 1);
  const d = await gw.admin("DELETE", `${T}/llm`);
  assert.ok(d.status === 200 || d.status === 204, d.text);
  assert.equal(await held(), 0);
});
