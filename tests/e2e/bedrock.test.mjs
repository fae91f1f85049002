// Amazon Bedrock end to end: every client dialect reaches Claude (and other models) through
// Converse, ConverseStream and Anthropic's Messages format on `invoke`, against a stand-in
// that checks each request's SigV4 signature with AWS's own signer and streams AWS's
// event-stream frames (tests/mocks/bedrock.mjs). Refusals of a wrong key come from the
// stand-in, as they would from AWS; throttling falls over to Anthropic's own API.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText, streamText, tool, stepCountIs } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { z } from "zod";
import { startGateway, planted } from "../harness.mjs";
import { chatStream } from "../chat-stream.mjs";
import { startBedrock, HELLO } from "../mocks/bedrock.mjs";
import { startLlm } from "../mocks/llm.mjs";

const KEY_ID = "AKIA" + randomBytes(8).toString("hex").toUpperCase();
const SECRET = "bedrock-secret-" + randomBytes(12).toString("base64url");
const TEMP_ID = "ASIA" + randomBytes(8).toString("hex").toUpperCase();
const TEMP_SECRET = "bedrock-temp-" + randomBytes(12).toString("base64url");
const SESSION = "bedrock-session-" + randomBytes(24).toString("base64url");
const ANTHROPIC_KEY = "sk-ant-" + randomBytes(8).toString("hex");
for (const s of [SECRET, TEMP_SECRET, SESSION, ANTHROPIC_KEY]) planted.add(s);
const CLAUDE = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const PROFILE_ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const weather = { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { location: { type: "string" } } } } };

let gw, bedrock, llm, oai, ant, key;
before(async () => {
  gw = await startGateway();
  bedrock = await startBedrock({ keys: { [KEY_ID]: { secret: SECRET }, [TEMP_ID]: { secret: TEMP_SECRET, session: SESSION } } });
  llm = await startLlm({ openaiKey: ANTHROPIC_KEY, anthropicKey: ANTHROPIC_KEY });
  const t = await gw.tenant("aws");
  key = t.key;
  const aws = (extra = {}) => ({ kind: "bedrock", region: "us-west-2", base_url: bedrock.url, aws: { access_key_id: KEY_ID, secret_access_key: SECRET }, ...extra });
  const r = await gw.admin("PUT", "aws/llm", {
    // Two failures open a target's breaker: throttling must never count as one.
    circuit_breaker: { failure_threshold: 2, open_seconds: 60 },
    providers: {
      bed: aws(),
      conv: aws({ api: "converse" }),
      temp: aws({ aws: { access_key_id: TEMP_ID, secret_access_key: TEMP_SECRET, session_token: SESSION } }),
      wrong: aws({ aws: { access_key_id: KEY_ID, secret_access_key: "not-the-secret" } }),
      claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
    },
    routes: {
      claude: [{ provider: "bed", model: CLAUDE }],
      "claude-conv": [{ provider: "conv", model: CLAUDE }],
      llama: [{ provider: "bed", model: "meta.llama3-3-70b-instruct-v1:0" }],
      profile: [{ provider: "temp", model: PROFILE_ARN }],
      wrong: [{ provider: "wrong", model: CLAUDE, retries: 0 }],
      throttled: [{ provider: "bed", model: "anthropic.claude-throttled", retries: 1 }, { provider: "claude", model: "claude-ok" }],
      notready: [{ provider: "bed", model: "anthropic.claude-notready", retries: 0 }, { provider: "claude", model: "claude-ok" }],
      "frame-throttled": [{ provider: "bed", model: "anthropic.claude-throttled-frame", retries: 0 }, { provider: "claude", model: "claude-ok" }],
      "frame-notready": [{ provider: "bed", model: "anthropic.claude-notready-frame", retries: 0 }, { provider: "claude", model: "claude-ok" }],
      midstream: [{ provider: "bed", model: "anthropic.claude-midstream" }],
      badcrc: [{ provider: "bed", model: "anthropic.claude-badcrc" }],
      guardrail: [{ provider: "conv", model: "anthropic.claude-guardrail" }],
      toolong: { targets: [{ provider: "bed", model: "anthropic.claude-toolong" }], context_fallbacks: [{ provider: "claude", model: "claude-ok" }] },
    },
  });
  assert.equal(r.status, 201, r.text);
  oai = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  ant = new Anthropic({ apiKey: key, baseURL: gw.url.origin, maxRetries: 0 });
});
after(async () => {
  await gw?.stop();
  await bedrock?.close();
  await llm?.close();
});

test("an OpenAI client reaches Claude on Bedrock through Converse, signed: JSON, stream and streamed tool calls", async () => {
  const signedBefore = bedrock.seen.signed;
  const c = await oai.chat.completions.create({ model: "claude", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }], max_tokens: 50 });
  assert.equal(c.choices[0].message.content, HELLO);
  assert.deepEqual([c.usage.prompt_tokens, c.usage.completion_tokens], [25, 15]);
  let sent = bedrock.last();
  assert.equal(sent.path, "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse");
  assert.deepEqual(sent.body.system, [{ text: "Be brief." }]);
  assert.equal(sent.body.inferenceConfig.maxTokens, 50);
  assert.match(sent.headers.authorization, new RegExp(`^AWS4-HMAC-SHA256 Credential=${KEY_ID}/\\d{8}/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, `));

  const s = await chatStream(await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.text, HELLO);
  assert.equal(s.finish, "stop");
  assert.deepEqual([s.usage.prompt_tokens, s.usage.completion_tokens], [25, 15]);
  assert.equal(bedrock.last().op, "converse-stream");

  const t = await chatStream(await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "weather in SF?" }], tools: [weather], stream: true }));
  assert.equal(t.text, "Let me check.");
  assert.equal(t.finish, "tool_calls");
  assert.deepEqual(t.calls.map((c) => [c.id, c.name, JSON.parse(c.arguments)]), [
    ["tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather", { location: "San Francisco, CA" }],
    ["tooluse_2sPlK8xsT8qUYn0bS4NHhA", "get_time", {}],
  ]);
  assert.equal(bedrock.last().body.toolConfig.tools[0].toolSpec.name, "get_weather");
  // The results go back as toolResult blocks, with the toolConfig Bedrock requires beside them.
  const again = await oai.chat.completions.create({
    model: "claude",
    tools: [weather],
    messages: [
      { role: "user", content: "weather in SF?" },
      { role: "assistant", content: t.text, tool_calls: t.calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) },
      ...t.calls.map((c) => ({ role: "tool", tool_call_id: c.id, content: '{"temp": 18}' })),
    ],
  });
  assert.equal(again.choices[0].message.content, HELLO);
  const turn = bedrock.last().body.messages.at(-1);
  assert.deepEqual(turn.content.map((b) => b.toolResult.toolUseId), t.calls.map((c) => c.id));
  assert.equal(bedrock.seen.signed - signedBefore, 4, "every request passed AWS's signature check");
});

test("an image reaches Converse as bytes; a model that is not Claude is reached through Converse from an Anthropic client", async () => {
  const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
  await oai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }] }] });
  const image = bedrock.last().body.messages[0].content.find((b) => b.image);
  assert.deepEqual(image.image, { format: "png", source: { bytes: png } });

  const m = await ant.messages.create({ model: "llama", max_tokens: 20, messages: [{ role: "user", content: "hi" }] });
  assert.equal(m.content[0].text, HELLO);
  assert.equal(bedrock.last().op, "converse");
  assert.equal(bedrock.last().model, "meta.llama3-3-70b-instruct-v1:0");
});

test("an Anthropic client reaches Claude on Bedrock in Claude's own format (invoke): JSON, stream, tools, beta flags", async () => {
  const m = await ant.messages.create({ model: "claude", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }, { headers: { "anthropic-beta": "context-1m-2025-08-07" } });
  assert.equal(m.content[0].text, HELLO);
  assert.equal(m.usage.input_tokens, 25);
  let sent = bedrock.last();
  assert.equal(sent.op, "invoke");
  assert.equal(sent.body.anthropic_version, "bedrock-2023-05-31");
  assert.deepEqual(sent.body.anthropic_beta, ["context-1m-2025-08-07"]);

  const final = await ant.messages.stream({ model: "claude", max_tokens: 50, messages: [{ role: "user", content: "weather?" }], tools: [{ name: "get_weather", input_schema: { type: "object" } }] }).finalMessage();
  assert.equal(bedrock.last().op, "invoke-with-response-stream");
  assert.equal(final.stop_reason, "tool_use");
  assert.deepEqual(final.content.filter((b) => b.type === "tool_use").map((b) => [b.name, b.input]), [["get_weather", { location: "San Francisco, CA" }], ["get_time", {}]]);

  // `api: converse` sends the same client to Converse.
  const c = await ant.messages.stream({ model: "claude-conv", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).finalMessage();
  assert.equal(c.content[0].text, HELLO);
  assert.equal(c.usage.output_tokens, 15);
  assert.equal(bedrock.last().op, "converse-stream");
});

test("the Vercel AI SDK reaches Bedrock through both client formats, with a tool", async () => {
  const openai = createOpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1` });
  const anthropic = createAnthropic({ apiKey: key, baseURL: `${gw.url.origin}/v1` });
  const getWeather = tool({ description: "Weather", inputSchema: z.object({ location: z.string() }), execute: async () => ({ temp: 18 }) });
  const a = await generateText({ model: openai.chat("claude"), prompt: "hi", maxRetries: 0 });
  assert.equal(a.text, HELLO);
  assert.equal(a.usage.inputTokens, 25);
  const b = streamText({ model: anthropic("claude"), prompt: "weather?", tools: { get_weather: getWeather, get_time: tool({ inputSchema: z.object({}), execute: async () => "noon" }) }, stopWhen: stepCountIs(2), maxRetries: 0 });
  const calls = [];
  for await (const part of b.fullStream) if (part.type === "tool-call") calls.push(part.toolName);
  assert.deepEqual(calls, ["get_weather", "get_time"]);
  assert.deepEqual((await b.steps).map((s) => s.text), ["Let me check.", HELLO]);
});

test("temporary credentials carry their session token; a profile ARN is one double-encoded path segment", async () => {
  const c = await oai.chat.completions.create({ model: "profile", messages: [{ role: "user", content: "hi" }] });
  assert.equal(c.choices[0].message.content, HELLO);
  const sent = bedrock.last();
  assert.equal(sent.path, "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse");
  assert.equal(sent.headers["x-amz-security-token"], SESSION);
  assert.match(sent.headers.authorization, /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,/);
});

test("a wrong secret is refused by Bedrock, not by us: the client gets a 502 that quotes nothing of it", async () => {
  const before = bedrock.seen.refused.InvalidSignatureException ?? 0;
  await assert.rejects(oai.chat.completions.create({ model: "wrong", messages: [{ role: "user", content: "hi" }] }), (e) => {
    assert.equal(e.status, 502);
    assert.match(e.message, /refused this gateway's credentials/);
    assert.doesNotMatch(e.message, /signature we calculated|AKIA|ASIA/);
    return true;
  });
  assert.equal(bedrock.seen.refused.InvalidSignatureException - before, 1);
});

test("throttling falls over to Anthropic's own API after the retry, and does not count against Bedrock's breaker", async () => {
  const calls = () => bedrock.requests.filter((r) => r.model === "anthropic.claude-throttled").length;
  const before = calls();
  const r = await oai.chat.completions.create({ model: "throttled", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(r.response.headers.get("x-gateway-provider"), "claude");
  assert.equal(r.response.headers.get("x-gateway-attempts"), "3");
  assert.equal(calls() - before, 2, "one retry of the throttled target");
  for (let i = 0; i < 3; i++) await oai.chat.completions.create({ model: "throttled", messages: [{ role: "user", content: "hi" }] });
  assert.equal(calls() - before, 8, "throttling never opens the breaker: Bedrock is tried every time");

  const n = await oai.chat.completions.create({ model: "notready", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(n.response.headers.get("x-gateway-provider"), "claude");
  // A throttling exception in the stream, before any content, falls over the same way.
  const f = await oai.chat.completions.create({ model: "frame-throttled", messages: [{ role: "user", content: "hi" }], stream: true }).withResponse();
  assert.equal(f.response.headers.get("x-gateway-provider"), "claude");
  assert.ok((await chatStream(f.data)).text.length > 0);
  // A model not ready, in the stream's first frame, counts as throttling too: never the breaker.
  const frames = () => bedrock.requests.filter((r) => r.model === "anthropic.claude-notready-frame").length;
  const framesBefore = frames();
  for (let i = 0; i < 6; i++) {
    const s = await oai.chat.completions.create({ model: "frame-notready", messages: [{ role: "user", content: "hi" }], stream: true }).withResponse();
    assert.equal(s.response.headers.get("x-gateway-provider"), "claude");
    await chatStream(s.data);
  }
  assert.equal(frames() - framesBefore, 6, "Bedrock is tried every time");
});

test("an exception or a corrupt frame after content ends the stream with an explicit error, in each client's format", async () => {
  let text = "";
  await assert.rejects(async () => {
    for await (const c of await oai.chat.completions.create({ model: "midstream", messages: [{ role: "user", content: "hi" }], stream: true })) text += c.choices[0]?.delta?.content ?? "";
  });
  assert.ok(text.startsWith("Hello"), text);
  const r = await fetch(`${gw.url.origin}/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json", "anthropic-version": "2023-06-01" },
    body: JSON.stringify({ model: "badcrc", max_tokens: 20, stream: true, messages: [{ role: "user", content: "hi" }] }),
  });
  const body = await r.text();
  const error = /event: error\ndata: (.*)\n/.exec(body);
  assert.ok(error, body);
  assert.deepEqual(JSON.parse(error[1]), { type: "error", error: { type: "api_error", message: "upstream sent a bad event-stream frame: a frame's checksum does not match" } });
  assert.doesNotMatch(body, /message_stop/);
  assert.doesNotMatch(body, /secret prompt text/);
});

test("a guardrail's stop is a content filter; an input too long for the model moves to the route's context fallback", async () => {
  const g = await oai.chat.completions.create({ model: "guardrail", messages: [{ role: "user", content: "x" }] });
  assert.equal(g.choices[0].finish_reason, "content_filter");
  const a = await ant.messages.create({ model: "guardrail", max_tokens: 5, messages: [{ role: "user", content: "x" }] });
  assert.equal(a.stop_reason, "refusal");

  const r = await oai.chat.completions.create({ model: "toolong", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(r.response.headers.get("x-gateway-provider"), "claude");
});

test("the AWS secret and session token are sealed: never shown, never logged", async () => {
  const r = await gw.admin("GET", "aws/llm");
  assert.equal(r.status, 200);
  assert.doesNotMatch(r.text, new RegExp(`${SECRET}|${SESSION}|${TEMP_SECRET}`));
  assert.equal(r.body.providers.bed.aws.access_key_id, KEY_ID);
});
