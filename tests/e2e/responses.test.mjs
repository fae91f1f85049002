// The Responses API end to end, with the official `openai` SDK and the Vercel AI SDK: passed
// through to OpenAI itself, translated for Anthropic and for Chat-Completions-only servers
// (streamed and not, with a function tool call and its result), what only OpenAI keeps refused
// by name, a failure mid-stream raised, usage and cost accounted.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { generateText, streamText, tool, jsonSchema } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { startGateway, planted } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-upstream-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm, key, client;

const HELLO = "Hello, world! ünïcødé ✓";
const weather = {
  type: "function",
  name: "get_weather",
  description: "Weather at a place",
  parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
};

before(async () => {
  gw = await startGateway();
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  const t = await gw.tenant("resp");
  key = t.key;
  const r = await gw.admin("PUT", "resp/llm", {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      compat: { kind: "openai_compatible", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
    },
    routes: {
      gpt: [{ provider: "oai", model: "gpt-ok" }],
      claude: [{ provider: "claude", model: "claude-ok" }],
      llama: [{ provider: "compat", model: "llama-ok" }],
      midstream: [{ provider: "claude", model: "midstream" }],
      "fb-500": [{ provider: "claude", model: "fail-500", retries: 0 }, { provider: "oai", model: "gpt-ok" }],
    },
  });
  assert.equal(r.status, 201, r.text);
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:claude-ok", JSON.stringify({ input_per_mtok: 3, output_per_mtok: 15 }));
  client = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

/** Reads a streamed response the way an app does: the text deltas, the calls, the last event. */
async function consume(stream) {
  const seen = { text: "", types: [], seqs: [], calls: {}, final: null };
  for await (const ev of stream) {
    seen.types.push(ev.type);
    seen.seqs.push(ev.sequence_number);
    if (ev.type === "response.output_text.delta") seen.text += ev.delta;
    if (ev.type === "response.output_item.done" && ev.item.type === "function_call") seen.calls[ev.item.name] = ev.item;
    if (ev.type === "response.completed" || ev.type === "response.incomplete") seen.final = ev.response;
  }
  return seen;
}

test("an openai target gets the Responses request as sent and its answer goes back unchanged", async () => {
  const r = await client.responses.create({ model: "gpt", input: "hi", instructions: "Be brief." });
  assert.equal(r.output_text, HELLO);
  assert.equal(r.usage.input_tokens, 25);
  const sent = llm.last();
  assert.equal(sent.path, "/v1/responses");
  assert.equal(sent.body.model, "gpt-ok");
  assert.equal(sent.body.input, "hi");
  assert.equal(sent.body.instructions, "Be brief.");
  assert.equal(sent.body.max_output_tokens, 4096, "an uncapped request is capped at what it was charged for");
  assert.equal(sent.headers.authorization, `Bearer ${OPENAI_KEY}`);

  const s = await consume(await client.responses.create({ model: "gpt", input: "hi", stream: true }));
  assert.equal(s.text, HELLO);
  assert.equal(s.final.usage.output_tokens, 15);
  assert.deepEqual(s.seqs, s.seqs.map((_, i) => i));
});

for (const [route, upstreamPath] of [["claude", "/v1/messages"], ["llama", "/v1/chat/completions"]]) {
  test(`${route}: Responses translated both ways, not streamed and streamed, with a tool call and its result`, async () => {
    const r = await client.responses.create({ model: route, instructions: "Be brief.", input: "hi", max_output_tokens: 200 });
    assert.equal(r.object, "response");
    assert.equal(r.status, "completed");
    assert.equal(r.output_text, HELLO);
    assert.equal(r.usage.input_tokens, 25);
    assert.equal(r.usage.output_tokens, 15);
    let sent = llm.last();
    assert.equal(sent.path, upstreamPath);
    if (route === "claude") {
      assert.equal(sent.body.system, "Be brief.");
      assert.equal(sent.body.max_tokens, 200);
    } else {
      assert.equal(sent.body.messages[0].content, "Be brief.");
    }

    // The model calls a tool; the app runs it and sends the result back.
    const first = await client.responses.create({ model: route, input: "Weather in SF?", tools: [weather] });
    const call = first.output.find((o) => o.type === "function_call");
    assert.equal(call.name, "get_weather");
    assert.equal(JSON.parse(call.arguments).location, "San Francisco, CA");
    const second = await client.responses.create({
      model: route,
      tools: [weather],
      input: [{ role: "user", content: "Weather in SF?" }, ...first.output, { type: "function_call_output", call_id: call.call_id, output: "18C, sunny" }],
    });
    assert.equal(second.status, "completed");
    sent = llm.last();
    if (route === "claude") {
      const results = sent.body.messages.at(-1).content.filter((b) => b.type === "tool_result");
      assert.deepEqual(results.map((b) => [b.tool_use_id, b.content]), [[call.call_id, "18C, sunny"]]);
    } else {
      assert.deepEqual(sent.body.messages.at(-1), { role: "tool", tool_call_id: call.call_id, content: "18C, sunny" });
    }

    const s = await consume(await client.responses.create({ model: route, input: "hi", stream: true }));
    assert.equal(s.text, HELLO);
    assert.equal(s.types[0], "response.created");
    assert.equal(s.types.at(-1), "response.completed");
    assert.deepEqual(s.seqs, s.seqs.map((_, i) => i), "sequence numbers count the events");
    assert.deepEqual([s.final.usage.input_tokens, s.final.usage.output_tokens], [25, 15]);
    assert.equal(s.final.output[0].content[0].text, HELLO);

    const t = await consume(await client.responses.create({ model: route, input: "Weather?", tools: [weather], stream: true }));
    assert.equal(JSON.parse(t.calls.get_weather.arguments).location, "San Francisco, CA");
    assert.ok(t.types.includes("response.function_call_arguments.delta"));
  });
}

test("a translated answer is priced and logged like any other", async () => {
  const r = await client.responses.create({ model: "claude", input: "hi" }).withResponse();
  assert.equal(r.response.headers.get("x-gateway-provider"), "claude");
  assert.equal(r.response.headers.get("x-gateway-cost-usd"), ((25 * 3 + 15 * 15) / 1e6).toFixed(9));
  const id = r.response.headers.get("x-request-id");
  const line = await gw.waitForLog((m) => m.includes(id) && m.includes("llm_usage"));
  assert.equal(JSON.parse(line.message).llm_usage.output_tokens, 15);
});

test("fallback: a failing Anthropic target falls over to OpenAI, which gets the request as sent", async () => {
  const r = await client.responses.create({ model: "fb-500", input: "hi" }).withResponse();
  assert.equal(r.data.output_text, HELLO);
  assert.equal(r.response.headers.get("x-gateway-attempts"), "2");
  assert.equal(llm.last().path, "/v1/responses");
});

test("what only OpenAI keeps is refused by name for other targets, in OpenAI's error format", async () => {
  for (const [extra, needle] of [
    [{ previous_response_id: "resp_123" }, "previous_response_id"],
    [{ store: true }, "store: true"],
    [{ tools: [{ type: "web_search" }] }, "web_search"],
  ]) {
    await assert.rejects(client.responses.create({ model: "claude", input: "hi", ...extra }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, new RegExp(needle));
      assert.match(e.message, /openai/);
      return true;
    });
  }
  // OpenAI itself takes them.
  const ok = await client.responses.create({ model: "gpt", input: "hi", previous_response_id: "resp_123" });
  assert.equal(ok.output_text, HELLO);
  assert.equal(llm.last().body.previous_response_id, "resp_123");
  await assert.rejects(client.responses.retrieve("resp_123"), (e) => e.status === 404 && /keeps no responses/.test(e.message));
  await assert.rejects(client.responses.create({ model: "claude" }), (e) => e.status === 400 && /`input` is required/.test(e.message));
});

test("a failure after content ends the stream with an error the SDK raises, never a normal end", async () => {
  const types = [];
  let text = "";
  await assert.rejects(async () => {
    for await (const ev of await client.responses.create({ model: "midstream", input: "hi", stream: true })) {
      types.push(ev.type);
      if (ev.type === "response.output_text.delta") text += ev.delta;
    }
  }, (e) => e instanceof OpenAI.APIError);
  assert.ok(text.length > 0, "content came first");
  assert.ok(types.includes("response.failed"));
  assert.ok(!types.includes("response.completed"));
});

test("the Vercel AI SDK: openai(model) speaks Responses, openai.chat(model) Chat Completions, anthropic(model) Messages", async () => {
  const openai = createOpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1` });
  const anthropic = createAnthropic({ apiKey: key, baseURL: `${gw.url.origin}/v1` });
  for (const [model, path] of [
    [openai("claude"), "/v1/messages"],
    [openai("gpt"), "/v1/responses"],
    [openai.chat("claude"), "/v1/messages"],
    [anthropic("gpt"), "/v1/chat/completions"],
  ]) {
    const g = await generateText({ model, prompt: "hi", maxRetries: 0 });
    assert.equal(g.text, HELLO, `${model.modelId} via ${model.provider}`);
    assert.equal(g.usage.inputTokens, 25);
    assert.equal(g.usage.outputTokens, 15);
    assert.equal(llm.last().path, path);

    const s = streamText({ model, prompt: "hi", maxRetries: 0 });
    let text = "";
    for await (const part of s.textStream) text += part;
    assert.equal(text, HELLO, `${model.modelId} via ${model.provider}, streamed`);
    const usage = await s.usage;
    assert.equal(usage.inputTokens, 25);
    assert.equal(usage.outputTokens, 15);
  }
  // A tool call through the Responses translation.
  const g = await generateText({
    model: openai("claude"),
    prompt: "Weather in SF?",
    tools: { get_weather: tool({ description: "Weather", inputSchema: jsonSchema(weather.parameters) }) },
    maxRetries: 0,
  });
  assert.equal(g.toolCalls[0].toolName, "get_weather");
  assert.equal(g.toolCalls[0].input.location, "San Francisco, CA");
});

test("a Responses answer is cached and replayed as the same events, for a translated target too", async () => {
  const opts = { headers: { "x-gateway-cache-ttl": "60" } };
  for (const stream of [false, true]) {
    const ask = async () => {
      const r = await client.responses.create({ model: "claude", input: `cache me ${stream}`, stream }, opts).withResponse();
      if (!stream) return { cache: r.response.headers.get("x-gateway-cache"), text: r.data.output_text };
      let text = "";
      for await (const ev of r.data) if (ev.type === "response.output_text.delta") text += ev.delta;
      return { cache: r.response.headers.get("x-gateway-cache"), text };
    };
    const before = llm.requests.length;
    const first = await ask();
    const second = await ask();
    assert.deepEqual([first.cache, second.cache], ["miss", "hit"], `stream: ${stream}`);
    assert.equal(second.text, HELLO);
    assert.equal(llm.requests.length, before + 1, "the hit called no provider");
  }
});
