// The OpenAI-compatible presets end to end (mistral, groq, deepseek, xai, together, fireworks,
// openrouter, perplexity, ollama, vllm), against one stand-in that checks what each provider
// checks and answers in its shape (tests/mocks/compat.mjs), from the official OpenAI and
// Anthropic SDKs and the Vercel AI SDK.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { startGateway, planted } from "../harness.mjs";
import { startCompat, HELLO } from "../mocks/compat.mjs";

const KEY = "upstream-compat-" + randomBytes(8).toString("hex");
planted.add(KEY);
let gw, compat, oai, ant, tenantKey;

// A model of each preset, as a client names it (`{provider}/{model}`).
const MODELS = {
  mistral: "mistral/mistral-large-latest",
  groq: "groq/llama-3.3-70b-versatile",
  deepseek: "deepseek/deepseek-chat",
  xai: "xai/grok-4",
  together: "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
  fireworks: "fireworks/accounts/fireworks/models/llama-v3p1-8b-instruct",
  openrouter: "openrouter/anthropic/claude-sonnet-4.5",
  perplexity: "perplexity/sonar",
  ollama: "ollama/llama3.1",
  vllm: "vllm/Qwen/Qwen2.5-7B-Instruct",
};
const weather = { type: "function", function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { location: { type: "string" } } } } };
const antWeather = { name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { location: { type: "string" } } } };

before(async () => {
  gw = await startGateway();
  compat = await startCompat({ key: KEY });
  const t = await gw.tenant("presets");
  const providers = {};
  for (const kind of Object.keys(MODELS)) providers[kind] = { kind, base_url: compat.base(kind), ...(kind === "ollama" ? {} : { api_key: KEY }) };
  Object.assign(providers.openrouter, { site_url: "https://shop.example", app_name: "Shop bot" });
  const r = await gw.admin("PUT", "presets/llm", { providers });
  assert.equal(r.status, 201, r.text);
  tenantKey = t.key;
  oai = new OpenAI({ apiKey: t.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  ant = new Anthropic({ apiKey: t.key, baseURL: gw.url.origin, maxRetries: 0 });
});
after(async () => {
  await gw?.stop();
  await compat?.close();
});

async function chatStream(params) {
  let text = "";
  let reasoning = "";
  let usage = null;
  const calls = [];
  for await (const c of await oai.chat.completions.create({ ...params, stream: true })) {
    const d = c.choices[0]?.delta ?? {};
    text += d.content ?? "";
    reasoning += d.reasoning_content ?? d.reasoning ?? "";
    for (const t of d.tool_calls ?? []) {
      if (t.id) calls.push({ id: t.id, type: "function", function: { name: t.function.name, arguments: "" } });
      calls[t.index].function.arguments += t.function?.arguments ?? "";
    }
    if (c.usage) usage = c.usage;
  }
  return { text, reasoning, usage, calls };
}

test("every preset answers and streams with usage, at its own address with its key", async () => {
  for (const [kind, model] of Object.entries(MODELS)) {
    const r = await oai.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });
    assert.equal(r.choices[0].message.content, HELLO, kind);
    assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens], [25, 15], kind);
    const sent = compat.last(kind);
    assert.equal(sent.path, `${compat.prefixes[kind]}/chat/completions`, kind);
    assert.equal(sent.body.model, model.slice(model.indexOf("/") + 1), kind);
    assert.equal(sent.headers.authorization, kind === "ollama" ? undefined : `Bearer ${KEY}`, kind);

    const s = await chatStream({ model, messages: [{ role: "user", content: "hi" }], stream_options: { include_usage: true } });
    assert.equal(s.text, HELLO, `${kind}, streamed`);
    assert.deepEqual([s.usage?.prompt_tokens, s.usage?.completion_tokens], [25, 15], `${kind}, streamed`);
  }
});

test("Mistral: streams without stream_options, tool history from an Anthropic client under ids it accepts", async () => {
  // An Anthropic client's own ids (toolu_...) are not Mistral's 9 characters.
  const history = [
    { role: "user", content: "weather in Oslo and Bergen?" },
    { role: "assistant", content: [
      { type: "tool_use", id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", input: { location: "Oslo" } },
      { type: "tool_use", id: "toolu_01Hx9VQ3kZ8sA2mR5tY7uP4e", name: "get_weather", input: { location: "Bergen" } }] },
    { role: "user", content: [
      { type: "tool_result", tool_use_id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", content: "rain" },
      { type: "tool_result", tool_use_id: "toolu_01Hx9VQ3kZ8sA2mR5tY7uP4e", content: "sun" }] },
  ];
  const m = await ant.messages.create({ model: MODELS.mistral, max_tokens: 100, tools: [antWeather], messages: history });
  assert.equal(m.content[0].text, HELLO);
  const sent = compat.last("mistral").body.messages;
  const ids = sent[1].tool_calls.map((c) => c.id);
  assert.ok(ids.every((id) => /^[A-Za-z0-9]{9}$/.test(id)), ids.join());
  assert.notEqual(ids[0], ids[1]);
  assert.deepEqual([sent[2].tool_call_id, sent[3].tool_call_id], ids);

  // Mistral's own ids come back to the client as they are, and go out again unchanged.
  const asked = await ant.messages.create({ model: MODELS.mistral, max_tokens: 100, tools: [antWeather], messages: [{ role: "user", content: "weather?" }] });
  const use = asked.content.find((b) => b.type === "tool_use");
  assert.equal(use.id, "D681PevKs");
  const streamed = ant.messages.stream({ model: MODELS.mistral, max_tokens: 100, tools: [antWeather], messages: [
    { role: "user", content: "weather?" }, { role: "assistant", content: asked.content },
    { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "rain" }] }] });
  const final = await streamed.finalMessage();
  assert.equal(final.content[0].text, HELLO);
  assert.equal(final.usage.output_tokens, 15);
  const again = compat.last("mistral").body;
  assert.equal(again.messages[1].tool_calls[0].id, "D681PevKs");
  assert.equal(again.stream_options, undefined);
});

test("Groq refuses nothing the gateway sends: the fields it does not take are left out", async () => {
  const r = await oai.chat.completions.create({
    model: MODELS.groq, logprobs: true, top_logprobs: 2, logit_bias: { 50256: -100 },
    messages: [{ role: "system", content: "Be brief.", name: "ops" }, { role: "user", content: "hi", name: "ann" }] });
  assert.equal(r.choices[0].message.content, HELLO);
  const sent = compat.last("groq").body;
  assert.deepEqual([sent.logprobs, sent.top_logprobs, sent.logit_bias], [undefined, undefined, undefined]);
  assert.ok(sent.messages.every((m) => !("name" in m)));
  // Its stream's usage, as an Anthropic client sees it.
  const final = await ant.messages.stream({ model: MODELS.groq, max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).finalMessage();
  assert.equal(final.usage.output_tokens, 15);
});

test("the Vercel AI SDK reaches Groq through Chat Completions and Responses", async () => {
  const openai = createOpenAI({ apiKey: tenantKey, baseURL: `${gw.url.origin}/v1` });
  for (const model of [openai.chat(MODELS.groq), openai(MODELS.groq)]) {
    const g = await generateText({ model, prompt: "hi", maxRetries: 0 });
    assert.equal(g.text, HELLO, model.provider);
    assert.deepEqual([g.usage.inputTokens, g.usage.outputTokens], [25, 15], model.provider);
    assert.equal(compat.last("groq").body.messages.at(-1).role, "user");
  }
});

test("xAI: a reasoning model is not sent penalties or stop, others are; its running usage counts once", async () => {
  const params = { messages: [{ role: "user", content: "hi" }], presence_penalty: 0.5, frequency_penalty: 0.2, stop: ["END"] };
  const r = await oai.chat.completions.create({ model: "xai/grok-4", ...params });
  assert.equal(r.choices[0].message.content, HELLO);
  const sent = compat.last("xai").body;
  assert.deepEqual([sent.presence_penalty, sent.frequency_penalty, sent.stop], [undefined, undefined, undefined]);
  await oai.chat.completions.create({ model: "xai/grok-3", ...params });
  assert.deepEqual(compat.last("xai").body.stop, ["END"]);
  // Every chunk carries the total so far; the answer used 15 tokens, not their sum.
  const final = await ant.messages.stream({ model: "xai/grok-4", max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).finalMessage();
  assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [25, 15]);
});

test("DeepSeek reasoning reaches OpenAI clients as reasoning_content, and an OpenAI client's tool loop is accepted", async () => {
  const model = "deepseek/deepseek-reasoner";
  const messages = [{ role: "user", content: "weather in Oslo?" }];
  const first = await oai.chat.completions.create({ model, messages, tools: [weather] });
  const msg = first.choices[0].message;
  assert.equal(msg.reasoning_content, "The user wants the weather.");
  assert.equal(msg.tool_calls[0].function.name, "get_weather");
  const done = await oai.chat.completions.create({ model, tools: [weather], messages: [...messages, msg, { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "rain" }] });
  assert.equal(done.choices[0].message.content, HELLO);
  assert.equal(compat.last("deepseek").body.messages[1].reasoning_content, "The user wants the weather.");
  // Streamed, then sent back the way a client assembles it.
  const s = await chatStream({ model, messages, tools: [weather] });
  assert.equal(s.reasoning, "The user wants the weather.");
  const streamedDone = await oai.chat.completions.create({ model, tools: [weather], messages: [...messages,
    { role: "assistant", content: null, reasoning_content: s.reasoning, tool_calls: s.calls }, { role: "tool", tool_call_id: s.calls[0].id, content: "rain" }] });
  assert.equal(streamedDone.choices[0].message.content, HELLO);
});

test("DeepSeek reasoning reaches Anthropic clients as thinking blocks, which carry a tool loop back", async () => {
  const base = { model: "deepseek/deepseek-reasoner", max_tokens: 2000, thinking: { type: "enabled", budget_tokens: 1024 }, tools: [antWeather] };
  const ask = { role: "user", content: "weather in Oslo?" };
  const first = await ant.messages.create({ ...base, messages: [ask] });
  assert.deepEqual(first.content.map((b) => b.type), ["thinking", "tool_use"]);
  assert.equal(first.content[0].thinking, "The user wants the weather.");
  const use = first.content[1];
  const reply = { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "rain" }] };
  const done = await ant.messages.create({ ...base, messages: [ask, { role: "assistant", content: first.content }, reply] });
  assert.equal(done.content.at(-1).text, HELLO);
  assert.equal(compat.last("deepseek").body.messages[1].reasoning_content, "The user wants the weather.");
  // Without its thinking block DeepSeek refuses the turn, in the client's format: the gateway cannot make one up.
  await assert.rejects(ant.messages.create({ ...base, messages: [ask, { role: "assistant", content: [use] }, reply] }), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.message, /Missing `reasoning_content` field in the assistant message at message index 1/);
    return true;
  });
  // Streamed.
  const streamed = await ant.messages.stream({ ...base, messages: [ask] }).finalMessage();
  assert.deepEqual(streamed.content.map((b) => b.type), ["thinking", "tool_use"]);
  const again = await ant.messages.stream({ ...base, messages: [ask, { role: "assistant", content: streamed.content },
    { role: "user", content: [{ type: "tool_result", tool_use_id: streamed.content[1].id, content: "rain" }] }] }).finalMessage();
  assert.equal(again.content.at(-1).text, HELLO);
});

test("OpenRouter: told the app it serves; its reasoning, keep-alives, cost and mid-stream errors", async () => {
  const model = "openrouter/deepseek/deepseek-r1";
  const r = await oai.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });
  assert.equal(r.choices[0].message.reasoning, "The user wants the weather.");
  assert.equal(r.usage.cost, 0.00042);
  const sent = compat.last("openrouter");
  assert.equal(sent.headers["http-referer"], "https://shop.example");
  assert.equal(sent.headers["x-openrouter-title"], "Shop bot");
  // Streamed between keep-alive comments, to an Anthropic client: a thinking block.
  const final = await ant.messages.stream({ model, max_tokens: 2000, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: "hi" }] }).finalMessage();
  assert.deepEqual(final.content.map((b) => b.type), ["thinking", "text"]);
  assert.equal(final.content[0].thinking, "The user wants the weather.");
  assert.equal(final.content[1].text, HELLO);
  assert.equal(final.usage.output_tokens, 15);
  const m = await ant.messages.create({ model, max_tokens: 2000, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: "hi" }] });
  assert.equal(m.content[0].thinking, "The user wants the weather.");
  // An error chunk after content ends the client's stream with an error.
  let text = "";
  await assert.rejects(async () => {
    for await (const c of await oai.chat.completions.create({ model: "openrouter/midstream", messages: [{ role: "user", content: "hi" }], stream: true }))
      text += c.choices[0]?.delta?.content ?? "";
  }, (e) => e instanceof OpenAI.APIError);
  assert.equal(text, "Hello, world! ");
});

test("Perplexity is sent alternating turns: same-role messages merged; its citations reach the client", async () => {
  const r = await oai.chat.completions.create({ model: MODELS.perplexity, messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Tell me about Oslo." },
    { role: "user", content: "And its weather." },
    { role: "assistant", content: "Oslo is the capital." },
    { role: "assistant", content: "It rains." },
    { role: "user", content: "Thanks. Sources?" }] });
  assert.equal(r.choices[0].message.content, HELLO);
  assert.deepEqual(r.citations, ["https://example.com/a"]);
  assert.deepEqual(compat.last("perplexity").body.messages.map((m) => [m.role, m.content]), [
    ["system", "Be brief."], ["user", "Tell me about Oslo.\n\nAnd its weather."], ["assistant", "Oslo is the capital.\n\nIt rains."], ["user", "Thanks. Sources?"]]);
  // Anthropic's API takes two user messages in a row: so does the gateway, for Perplexity.
  const m = await ant.messages.create({ model: MODELS.perplexity, max_tokens: 50, messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }] });
  assert.deepEqual(compat.last("perplexity").body.messages, [{ role: "user", content: "a\n\nb" }]);
  assert.equal(m.content[0].text, HELLO);
});

test("Ollama and vLLM stream usage because the gateway asks for it; Ollama's reasoning is thinking", async () => {
  for (const kind of ["ollama", "vllm"]) {
    const s = await chatStream({ model: MODELS[kind], messages: [{ role: "user", content: "hi" }] });
    assert.equal(s.text, HELLO, kind);
    assert.equal(s.usage, null, `${kind}: the client did not ask for usage`);
    assert.equal(compat.last(kind).body.stream_options.include_usage, true, kind);
    const final = await ant.messages.stream({ model: MODELS[kind], max_tokens: 50, messages: [{ role: "user", content: "hi" }] }).finalMessage();
    assert.deepEqual([final.usage.input_tokens, final.usage.output_tokens], [25, 15], kind);
  }
  const final = await ant.messages.stream({ model: "ollama/gpt-oss:20b", max_tokens: 2000, thinking: { type: "enabled", budget_tokens: 1024 }, messages: [{ role: "user", content: "hi" }] }).finalMessage();
  assert.equal(final.content[0].thinking, "The user wants the weather.");
});
