// Local stand-ins for OpenAI and Anthropic: the real paths, auth headers, JSON bodies and SSE
// streams (replayed from tests/fixtures/llm, the same recordings the unit tests use). What a
// model does is chosen by its name, so a route's chain can mix healthy and failing targets:
//   *-ok          answers (tools in the request -> the recorded parallel tool calls)
//   fail-429      429 with retry-after-ms        fail-500   500
//   slow          waits 2 s before answering     error-start  stream: error event first
//   midstream     stream: content, then an error event
//   flaky-N       fails with 503 N times, then answers
//   broken-*      a broken answer (see BROKEN): bad SSE framing, bad JSON, cut-off or hanging bodies
// Azure OpenAI deployments and Gemini models answer the same way (`filtered`: Azure's content
// filter refuses the prompt; `blocked`: Gemini blocks it). Any other model answers like *-ok; `llm.delays[model] = ms` makes it wait first. `exact-*`
// models report `max_tokens` output tokens; `drip` streams (OpenAI) for ten seconds; `flood`
// streams (OpenAI) up to 64 MiB as fast as it is read (`llm.open.flood`: its bodies still open); `shapes`
// writes an email address in every place a model writes text (llm_shapes.mjs), in each format.
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import { SHAPES } from "./llm_shapes.mjs";

const FIX = path.join(import.meta.dirname, "..", "fixtures", "llm");
const fixture = (name) => readFileSync(path.join(FIX, name), "utf8");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Upstream answers that break the wire format in every way we could think of.
const big = "x".repeat(2 * 1024 * 1024);
const sse = (res, text, end = true) => {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write(text);
  if (end) res.end();
};
const firstChunk = (openai) =>
  openai
    ? 'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n'
    : 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}}\n\n' +
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n' +
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n';
// The `ansi` model streams (OpenAI) this text, as a hostile model could: an OSC 52 clipboard
// write (ESC ... BEL), a C1 CSI clearing the screen, a legitimate newline and a DEL.
export const ANSI_TEXT = "Hi\u001b]52;c;aGFja2Vk\u0007 \u009b2J\nbye\u007f";
export const BROKEN = {
  "broken-json": (res) => sse(res, "data: {not json at all\n\n"),
  "broken-noprefix": (res) => sse(res, "hello world\nthis is not sse\n\n"),
  "broken-binary": (res) => { res.writeHead(200, { "content-type": "text/event-stream" }); res.end(Buffer.from([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xff, 0xfe, 0x00, 0x7b, 0x0a, 0x0a])); },
  "broken-longline": (res) => sse(res, "data: " + big),
  "broken-html": (res) => { res.writeHead(200, { "content-type": "text/html" }); res.end("<html><body>502 Bad Gateway</body></html>"); },
  "broken-empty": (res) => { res.writeHead(200, { "content-type": "application/json" }); res.end(); },
  "broken-cut": (res, { openai }) => { sse(res, firstChunk(openai), false); setTimeout(() => res.destroy(), 20); },
  "broken-cut-line": (res, { openai }) => { sse(res, firstChunk(openai) + 'data: {"id":"c1","obj', false); setTimeout(() => res.destroy(), 20); },
  "broken-nodone": (res, { openai }) => sse(res, firstChunk(openai)),
  "broken-wrongshape": (res, { openai, stream }) =>
    stream ? sse(res, 'data: {"choices":"nope","type":42}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":"x","delta":null}\n\n')
      : (res.writeHead(200, { "content-type": "application/json" }), res.end(openai ? '{"choices":[{"message":7}]}' : '{"type":"message","content":"nope"}')),
  "broken-hang": (res, { stream }) => { res.writeHead(200, { "content-type": stream ? "text/event-stream" : "application/json" }); res.flushHeaders(); },
};

// OpenAI's Responses API: the recorded streams, or the response they end with.
async function answerResponses(res, send, body, tools) {
  const model = body.model;
  if (model === "shapes") return SHAPES.responses(res, send, model, body);
  const name = model === "midstream" ? "openai_responses_error_midstream.sse" : tools ? "openai_responses_tools.sse" : "openai_responses_text.sse";
  const text = fixture(name);
  if (body.stream) {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    for (const part of text.split(/(?<=\n\n)/)) {
      res.write(part);
      await sleep(2);
    }
    return res.end();
  }
  const last = text.trim().split("\n\n").at(-1);
  const data = JSON.parse(last.slice(last.indexOf("data: ") + 6));
  return send(200, { ...data.response, model });
}

// Google's Gemini API: `generateContent` answers and `streamGenerateContent?alt=sse` recordings.
const GEMINI_ANSWER = (model, tools) => ({
  candidates: [{ content: { parts: tools ? [{ functionCall: { name: "get_weather", args: { location: "San Francisco, CA" } } }, { functionCall: { name: "get_time", args: {} } }] : [{ text: "Hello, world! ünïcødé ✓" }], role: "model" }, finishReason: "STOP", index: 0 }],
  usageMetadata: { promptTokenCount: 25, candidatesTokenCount: 15, totalTokenCount: 40, promptTokensDetails: [{ modality: "TEXT", tokenCount: 25 }] },
  modelVersion: model, responseId: "mFq5aP2bIMvIz7IPl9ezwQQ",
});
// A vector per input: its position and length make it recognisable.
export const vector = (i, text, dims = 3) => Array.from({ length: dims }, (_, k) => Math.fround(((i + 1) * (k + 1)) / 8 - (String(text).length % 5) / 16));
const encode = (v, format) => (format === "base64" ? Buffer.from(new Float32Array(v).buffer).toString("base64") : v);
async function answerGemini(res, send, model, method, body) {
  if (method === "batchEmbedContents") {
    if (model === "fail-500") return send(500, { error: { code: 500, message: "An internal error has occurred.", status: "INTERNAL" } });
    return send(200, { embeddings: body.requests.map((r, i) => ({ values: vector(i, r.content.parts[0].text, r.outputDimensionality ?? 3) })) });
  }
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  if (model === "fail-500") return send(500, { error: { code: 500, message: "An internal error has occurred.", status: "INTERNAL" } });
  if (model === "shapes") return SHAPES.gemini(res, send, model, method);
  if (model === "blocked") return send(200, { promptFeedback: { blockReason: "SAFETY", safetyRatings: [] }, usageMetadata: { promptTokenCount: 8, totalTokenCount: 8 }, modelVersion: model, responseId: "b1" });
  if (method === "streamGenerateContent") {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const name = model === "midstream" ? "gemini_error_midstream.sse" : tools ? "gemini_tools.sse" : "gemini_text.sse";
    for (const part of fixture(name).split(/(?<=\r\n\r\n)/)) {
      res.write(part);
      await sleep(2);
    }
    return res.end();
  }
  return send(200, GEMINI_ANSWER(model, tools));
}

export async function startLlm({ openaiKey, anthropicKey }) {
  const llm = { requests: [], counts: {}, flaky: {}, delays: {}, open: {} };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const send = (status, body, headers = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      };
      // Azure OpenAI: chat at a deployment, keyed by `api-key` (or an Entra ID bearer token).
      const azure = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)\?api-version=[\w.-]+$/.exec(req.url);
      const gemini = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent\?alt=sse|batchEmbedContents)$/.exec(req.url);
      if (gemini) {
        if (req.headers["x-goog-api-key"] !== openaiKey)
          return send(400, { error: { code: 400, message: "API key not valid. Please pass a valid API key.", status: "INVALID_ARGUMENT" } });
        const body = JSON.parse(Buffer.concat(chunks).toString());
        llm.requests.push({ path: req.url, body, headers: req.headers });
        return answerGemini(res, send, gemini[1], gemini[2].split("?")[0], body);
      }
      if (azure && req.headers["api-key"] !== openaiKey && req.headers.authorization !== `Bearer ${openaiKey}`)
        return send(401, { error: { code: "401", message: "Access denied due to invalid subscription key or wrong API endpoint." } });
      if (azure && azure[1] === "filtered") {
        llm.requests.push({ path: req.url, headers: req.headers });
        return send(400, { error: { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", type: null, param: "prompt", code: "content_filter", status: 400,
          innererror: { code: "ResponsibleAIPolicyViolation", content_filter_result: { hate: { filtered: false, severity: "safe" }, self_harm: { filtered: false, severity: "safe" }, sexual: { filtered: false, severity: "safe" }, violence: { filtered: true, severity: "medium" } } } } });
      }
      const responses = req.url === "/v1/responses";
      const embeddings = req.url === "/v1/embeddings" || azure?.[2] === "embeddings";
      const openai = req.url === "/v1/chat/completions" || responses || embeddings || !!azure;
      const anthropic = req.url === "/v1/messages";
      if (!openai && !anthropic) return send(404, { error: { message: "no such path" } });
      if (openai && !azure && req.headers.authorization !== `Bearer ${openaiKey}`)
        return send(401, { error: { message: `Incorrect API key provided: ${req.headers.authorization}`, type: "invalid_request_error", code: "invalid_api_key" } });
      if (anthropic && (req.headers["x-api-key"] !== anthropicKey || req.headers["anthropic-version"] !== "2023-06-01"))
        return send(401, { type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } });
      const body = JSON.parse(Buffer.concat(chunks).toString());
      llm.requests.push({ path: req.url, body, headers: req.headers });
      const model = azure ? azure[1] : body.model;
      llm.counts[model] = (llm.counts[model] ?? 0) + 1;
      if ((await import("./llm_context.mjs")).answerContext(model, body, { openai, send })) return; // ctx-*: context windows
      const err = (status, message, headers) =>
        openai
          ? send(status, { error: { message, type: "server_error", param: null, code: null } }, headers)
          : send(status, { type: "error", error: { type: status === 429 ? "rate_limit_error" : "api_error", message } }, headers);
      if (model === "fail-429") return err(429, "Rate limit reached for requests", { "retry-after-ms": "20", "retry-after": "1" });
      if (model === "fail-500") return err(500, "The server had an error while processing your request.");
      const flaky = /^flaky-(\d+)$/.exec(model);
      if (flaky) {
        llm.flaky[model] = (llm.flaky[model] ?? 0) + 1;
        if (llm.flaky[model] <= Number(flaky[1])) return err(503, "overloaded");
      }
      if (model === "slow") await sleep(2000);
      if (llm.delays[model]) await sleep(llm.delays[model]);
      if (BROKEN[model]) return BROKEN[model](res, { openai, stream: !!body.stream });
      if (model.startsWith("cached-")) return (await import("./llm_usage.mjs")).USAGE[model](res, send, { body, openai, responses, anthropic });
      if (model === "ansi" && body.stream && openai) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        const [a, b] = [ANSI_TEXT.slice(0, 8), ANSI_TEXT.slice(8)];
        return res.end(chunk({ role: "assistant", content: a }) + chunk({ content: b }) + chunk({}, "stop") + "data: [DONE]\n\n");
      }
      if (model === "drip" && body.stream && openai) {
        // A long answer, a word every 20 ms for 10 s: a client can leave in the middle of it.
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta, extra = {}) =>
          `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
        res.write(chunk({ role: "assistant", content: "" }));
        for (let i = 0; i < 500 && !res.destroyed; i++) {
          res.write(chunk({ content: "word " }));
          await sleep(20);
        }
        return res.end("data: [DONE]\n\n");
      }
      if (model === "flood" && body.stream && openai) {
        // Words as fast as the gateway takes them, for up to 64 MiB: a client that stops
        // reading stops the gateway's writes, and so its reads of this body.
        res.writeHead(200, { "content-type": "text/event-stream" });
        const piece = `data: ${JSON.stringify({ id: "c3", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta: { content: "word ".repeat(200) }, finish_reason: null }] })}\n\n`;
        llm.open.flood = (llm.open.flood ?? 0) + 1;
        res.on("close", () => (llm.open.flood -= 1));
        for (let sent = 0; sent < 64 << 20 && !res.destroyed; sent += piece.length) {
          if (!res.write(piece)) await new Promise((r) => { res.once("drain", r); res.once("close", r); });
        }
        return res.destroyed || res.end("data: [DONE]\n\n");
      }
      if (model === "chatter" && body.stream && openai) {
        // 5,000 chunks of text, then a term a route's guardrails block and a little more text;
        // the usage chunk (asked for or not) comes last, after a pause, as a long answer's does.
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunk = (delta, extra = {}) =>
          `data: ${JSON.stringify({ id: "c2", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;
        let out = chunk({ role: "assistant", content: "" });
        for (let i = 0; i < 5000; i++) out += chunk({ content: "word " });
        out += chunk({ content: "and now forbidden" });
        for (let i = 0; i < 100; i++) out += chunk({ content: " more" });
        res.write(out);
        await sleep(300);
        if (res.destroyed) return;
        res.write(`data: ${JSON.stringify({ id: "c2", object: "chat.completion.chunk", created: 1, model, choices: [], usage: { prompt_tokens: 25, completion_tokens: 5003, total_tokens: 5028 } })}\n\n`);
        return res.end("data: [DONE]\n\n");
      }
      if (openai && !responses && !body.stream && /^(echo|vision)/.test(model)) {
        // `echo-*`: answers with its model and the last user text. `vision`: counts what a real
        // model counts, 1,500 prompt tokens an image.
        const last = body.messages.at(-1)?.content;
        const parts = Array.isArray(last) ? last : [{ type: "text", text: last }];
        const text = parts.filter((p) => p.type === "text").map((p) => p.text).join(" ");
        const images = parts.filter((p) => p.type === "image_url").length;
        const prompt = 25 + 1500 * images;
        return send(200, { id: "chatcmpl-echo", object: "chat.completion", created: 1757000000, model,
          choices: [{ index: 0, message: { role: "assistant", content: `${model} says: ${text}`, refusal: null }, logprobs: null, finish_reason: "stop" }],
          usage: { prompt_tokens: prompt, completion_tokens: 10, total_tokens: prompt + 10 } });
      }
      const tools = Array.isArray(body.tools) && body.tools.length > 0;
      if (responses) return answerResponses(res, send, body, tools);
      if (model === "shapes") return (openai ? SHAPES.openai : SHAPES.anthropic)(res, send, model, body);
      if (embeddings) {
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        return send(200, { object: "list", model, usage: { prompt_tokens: 8, total_tokens: 8 },
          data: inputs.map((text, i) => ({ object: "embedding", index: i, embedding: encode(vector(i, text, body.dimensions ?? 3), body.encoding_format) })) });
      }
      if (body.stream) {
        const name = openai
          ? model === "midstream" ? "openai_error_midstream.sse" : model === "error-start" ? null : tools ? "openai_tools.sse" : "openai_text.sse"
          : model === "midstream" ? "anthropic_error_midstream.sse" : model === "error-start" ? "anthropic_error_start.sse" : tools ? "anthropic_tools.sse" : "anthropic_text.sse";
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        const text = name ? fixture(name) : 'data: {"error":{"message":"overloaded","type":"server_error"}}\n\n';
        // Event by event, with a pause, as a real model streams.
        for (const part of text.split(/(?<=\n\n)/)) {
          res.write(part);
          await sleep(2);
        }
        return res.end();
      }
      if (openai) {
        const message = tools
          ? { role: "assistant", content: null, tool_calls: [
              { id: "call_DdmO9pD3xa9XTPNJ32zg2hcA", type: "function", function: { name: "get_weather", arguments: '{"location": "San Francisco, CA"}' } },
              { id: "call_mJ3kqR8vN2pL6sT9wX1yZ4bC", type: "function", function: { name: "get_time", arguments: "{}" } }] }
          : { role: "assistant", content: "Hello, world! ünïcødé ✓", refusal: null };
        return send(200, { id: "chatcmpl-CBx1", object: "chat.completion", created: 1757000000, model, system_fingerprint: "fp_560af6e559",
          choices: [{ index: 0, message, logprobs: null, finish_reason: tools ? "tool_calls" : "stop" }],
          // `exact-*` models use all of `max_tokens`: a request costs what the gateway estimated.
          usage: model.startsWith("exact") ? { prompt_tokens: 25, completion_tokens: body.max_tokens, total_tokens: 25 + body.max_tokens }
            : { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 } });
      }
      const content = tools
        ? [{ type: "text", text: "Checking both." },
           { type: "tool_use", id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", input: { location: "San Francisco, CA" } },
           { type: "tool_use", id: "toolu_01Hx9VQ3kZ8sA2mR5tY7uP4e", name: "get_time", input: {} }]
        : [{ type: "text", text: "Hello, world! ünïcødé ✓" }];
      return send(200, { id: "msg_01XFDUDYJgAACzvnptvVoYEL", type: "message", role: "assistant", model, content,
        stop_reason: tools ? "tool_use" : "end_turn", stop_sequence: null, usage: { input_tokens: 25, output_tokens: 15 } });
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  llm.url = `http://127.0.0.1:${server.address().port}`;
  llm.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  llm.last = () => llm.requests.at(-1);
  return llm;
}
