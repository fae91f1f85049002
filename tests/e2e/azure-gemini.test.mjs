// Azure OpenAI and Gemini targets end to end, against stand-ins speaking their wire formats
// (Azure's deployment URLs, api-version and api-key header, its content-filter refusals;
// Gemini's generateContent and SSE stream, x-goog-api-key, safety blocks), reached from every
// client dialect with the official SDKs and the Vercel AI SDK.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText, streamText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { startGateway, planted } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const KEY = "upstream-cloud-" + randomBytes(8).toString("hex");
planted.add(KEY);
let gw, llm, oai, ant;
const HELLO = "Hello, world! ünïcødé ✓";
const weather = { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { location: { type: "string" } } } } };

before(async () => {
  gw = await startGateway();
  llm = await startLlm({ openaiKey: KEY, anthropicKey: KEY });
  const t = await gw.tenant("cloud");
  const r = await gw.admin("PUT", "cloud/llm", {
    providers: {
      az: { kind: "azure_openai", base_url: llm.url, api_key: KEY },
      entra: { kind: "azure_openai", base_url: llm.url, api_key: KEY, auth: "bearer", api_version: "2025-04-01-preview" },
      gem: { kind: "gemini", base_url: llm.url, api_key: KEY },
    },
    routes: {
      az: [{ provider: "az", model: "gpt-4o-prod" }],
      entra: [{ provider: "entra", model: "gpt-4o-prod" }],
      "az-filtered": [{ provider: "az", model: "filtered" }],
      gem: [{ provider: "gem", model: "gemini-2.5-flash" }],
      "gem-fb": [{ provider: "gem", model: "fail-500", retries: 0 }, { provider: "az", model: "gpt-4o-prod" }],
      "gem-blocked": [{ provider: "gem", model: "blocked" }],
      "gem-mid": [{ provider: "gem", model: "midstream" }],
    },
  });
  assert.equal(r.status, 201, r.text);
  oai = new OpenAI({ apiKey: t.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  ant = new Anthropic({ apiKey: t.key, baseURL: gw.url.origin, maxRetries: 0 });
  gw.key = t.key;
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

async function chatText(stream) {
  let text = "";
  let usage = null;
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? "";
    if (c.usage) usage = c.usage;
  }
  return { text, usage };
}

test("Azure: the deployment's URL, api-version and api-key; a bearer token and another version when configured", async () => {
  const r = await oai.chat.completions.create({ model: "az", messages: [{ role: "user", content: "hi" }] });
  assert.equal(r.choices[0].message.content, HELLO);
  let sent = llm.last();
  assert.equal(sent.path, "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21");
  assert.equal(sent.headers["api-key"], KEY);
  assert.equal(sent.headers.authorization, undefined);
  assert.equal(sent.body.max_completion_tokens, 4096);

  const s = await chatText(await oai.chat.completions.create({ model: "entra", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.text, HELLO);
  assert.equal(s.usage.prompt_tokens, 25);
  sent = llm.last();
  assert.equal(sent.path, "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2025-04-01-preview");
  assert.equal(sent.headers.authorization, `Bearer ${KEY}`);
  assert.equal(sent.headers["api-key"], undefined);

  // A Responses client reaches the deployment through chat.
  const resp = await oai.responses.create({ model: "az", input: "hi" });
  assert.equal(resp.output_text, HELLO);
  assert.match(llm.last().path, /\/chat\/completions\?/);
});

test("Azure's content filter refusing a prompt is a 400 naming the category, in each client's format", async () => {
  await assert.rejects(oai.chat.completions.create({ model: "az-filtered", messages: [{ role: "user", content: "x" }] }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /content management policy/);
    assert.match(e.message, /content_filter: violence medium/);
    return true;
  });
  await assert.rejects(ant.messages.create({ model: "az-filtered", max_tokens: 10, messages: [{ role: "user", content: "x" }] }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.error.error.type, "invalid_request_error");
    assert.match(e.message, /violence medium/);
    return true;
  });
});

test("Gemini from every client format: Chat Completions, Messages, Responses, streamed and not", async () => {
  const c = await oai.chat.completions.create({ model: "gem", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }], max_tokens: 50 });
  assert.equal(c.choices[0].message.content, HELLO);
  assert.deepEqual([c.usage.prompt_tokens, c.usage.completion_tokens], [25, 15]);
  let sent = llm.last();
  assert.equal(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
  assert.equal(sent.headers["x-goog-api-key"], KEY);
  assert.deepEqual(sent.body.systemInstruction, { parts: [{ text: "Be brief." }] });
  assert.equal(sent.body.generationConfig.maxOutputTokens, 50);

  const s = await chatText(await oai.chat.completions.create({ model: "gem", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } }));
  assert.equal(s.text, HELLO);
  assert.equal(s.usage.completion_tokens, 15);
  assert.equal(llm.last().path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");

  const m = await ant.messages.create({ model: "gem", max_tokens: 50, messages: [{ role: "user", content: "hi" }] });
  assert.equal(m.content[0].text, HELLO);
  assert.equal(m.usage.output_tokens, 15);
  const ms = ant.messages.stream({ model: "gem", max_tokens: 50, messages: [{ role: "user", content: "hi" }] });
  const final = await ms.finalMessage();
  assert.equal(final.content[0].text, HELLO);
  assert.equal(final.stop_reason, "end_turn");

  const r = await oai.responses.create({ model: "gem", input: "hi" });
  assert.equal(r.output_text, HELLO);
  let text = "";
  let done = null;
  for await (const ev of await oai.responses.create({ model: "gem", input: "hi", stream: true })) {
    if (ev.type === "response.output_text.delta") text += ev.delta;
    if (ev.type === "response.completed") done = ev.response;
  }
  assert.equal(text, HELLO);
  assert.equal(done.usage.output_tokens, 15);
});

test("Gemini function calls: ids made stable, results sent back under the call's name", async () => {
  const first = await oai.chat.completions.create({ model: "gem", messages: [{ role: "user", content: "weather?" }], tools: [weather] });
  const calls = first.choices[0].message.tool_calls;
  assert.equal(first.choices[0].finish_reason, "tool_calls");
  assert.deepEqual(calls.map((c) => [c.id, c.function.name]), [["call_mFq5aP2bIMvIz7IPl9ezwQQ_0", "get_weather"], ["call_mFq5aP2bIMvIz7IPl9ezwQQ_1", "get_time"]]);
  assert.equal(llm.last().body.tools[0].functionDeclarations[0].name, "get_weather");
  // The same ids streamed.
  const ids = [];
  for await (const c of await oai.chat.completions.create({ model: "gem", messages: [{ role: "user", content: "weather?" }], tools: [weather], stream: true }))
    for (const t of c.choices[0]?.delta?.tool_calls ?? []) if (t.id) ids.push(t.id);
  assert.deepEqual(ids, calls.map((c) => c.id));
  await oai.chat.completions.create({
    model: "gem",
    tools: [weather],
    messages: [{ role: "user", content: "weather?" }, first.choices[0].message, ...calls.map((c) => ({ role: "tool", tool_call_id: c.id, content: '{"temp": 18}' }))],
  });
  const turn = llm.last().body.contents.at(-1);
  assert.deepEqual(turn.parts.map((p) => p.functionResponse.name), ["get_weather", "get_time"]);
  assert.deepEqual(turn.parts[0].functionResponse.response, { temp: 18 });

  // An Anthropic client sees tool_use blocks.
  const m = await ant.messages.create({ model: "gem", max_tokens: 50, messages: [{ role: "user", content: "weather?" }], tools: [{ name: "get_weather", input_schema: { type: "object" } }] });
  assert.equal(m.stop_reason, "tool_use");
  assert.equal(m.content[0].input.location, "San Francisco, CA");
});

test("Gemini: a 500 falls over to the next target, a blocked prompt is a content filter, a failure mid-stream is an error", async () => {
  const r = await oai.chat.completions.create({ model: "gem-fb", messages: [{ role: "user", content: "hi" }] }).withResponse();
  assert.equal(r.data.choices[0].message.content, HELLO);
  assert.equal(r.response.headers.get("x-gateway-provider"), "az");
  assert.equal(r.response.headers.get("x-gateway-attempts"), "2");

  const b = await oai.chat.completions.create({ model: "gem-blocked", messages: [{ role: "user", content: "x" }] });
  assert.equal(b.choices[0].finish_reason, "content_filter");
  const a = await ant.messages.create({ model: "gem-blocked", max_tokens: 5, messages: [{ role: "user", content: "x" }] });
  assert.equal(a.stop_reason, "refusal");

  let text = "";
  await assert.rejects(async () => {
    for await (const c of await oai.chat.completions.create({ model: "gem-mid", messages: [{ role: "user", content: "hi" }], stream: true }))
      text += c.choices[0]?.delta?.content ?? "";
  }, (e) => e instanceof OpenAI.APIError);
  assert.equal(text, "Hello");
});

test("the Vercel AI SDK against Azure- and Gemini-shaped targets: generateText and streamText with usage", async () => {
  const openai = createOpenAI({ apiKey: gw.key, baseURL: `${gw.url.origin}/v1` });
  const anthropic = createAnthropic({ apiKey: gw.key, baseURL: `${gw.url.origin}/v1` });
  for (const model of [openai("gem"), openai("az"), openai.chat("gem"), openai.chat("az"), anthropic("gem"), anthropic("az")]) {
    const what = `${model.provider} ${model.modelId}`;
    const g = await generateText({ model, prompt: "hi", maxRetries: 0 });
    assert.equal(g.text, HELLO, what);
    assert.deepEqual([g.usage.inputTokens, g.usage.outputTokens], [25, 15], what);
    const s = streamText({ model, prompt: "hi", maxRetries: 0 });
    let text = "";
    for await (const part of s.textStream) text += part;
    assert.equal(text, HELLO, `${what}, streamed`);
    const usage = await s.usage;
    assert.deepEqual([usage.inputTokens, usage.outputTokens], [25, 15], `${what}, streamed`);
  }
});
