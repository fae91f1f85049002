// One stand-in for the OpenAI-compatible providers the gateway has presets for, each under its
// own path prefix (its real API's path after a `/{provider}` segment). Each checks what the
// real API checks and refuses what it refuses, and answers in its own shape:
//   mistral     /mistral/v1         422 on `stream_options` (its "Extra inputs are not permitted"),
//                                   400 on a tool-call id that is not 9 letters and digits;
//                                   usage on the last chunk, unasked; 9-character call ids
//   groq        /groq/openai/v1     400 on logprobs, top_logprobs, logit_bias, messages[].name and n != 1;
//                                   usage in `x_groq.usage` (and at the top when asked)
//   deepseek    /deepseek           deepseek-reasoner: reasoning_content, then content; 400 when an
//                                   assistant message of a turn with a tool call lacks its reasoning_content
//   xai         /xai/v1             400 on presence_penalty, frequency_penalty, stop for reasoning
//                                   models; the running usage on every chunk
//   together    /together/v1        usage on the last chunk
//   fireworks   /fireworks/inference/v1   `usage: null` on chunks; usage on the last when asked
//   openrouter  /openrouter/api/v1  `: OPENROUTER PROCESSING` comments, `reasoning` deltas and
//                                   message field, `usage.cost` always; `midstream`: an error chunk
//   perplexity  /perplexity         400 on roles that do not alternate; citations, search_results
//   ollama      /ollama/v1          no key; `reasoning` deltas; usage only when asked
//   vllm        /vllm/v1            usage only when asked, in a chunk with no choices
// Every hosted one (and vllm, started with a key) wants `Authorization: Bearer {key}`.
import http from "node:http";

export const HELLO = "Hello, world! ünïcødé ✓";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PREFIXES = {
  mistral: "/mistral/v1", groq: "/groq/openai/v1", deepseek: "/deepseek", xai: "/xai/v1", together: "/together/v1",
  fireworks: "/fireworks/inference/v1", openrouter: "/openrouter/api/v1", perplexity: "/perplexity", ollama: "/ollama/v1", vllm: "/vllm/v1",
};
const USAGE = { prompt_tokens: 25, completion_tokens: 15, total_tokens: 40 };
const THOUGHT = ["The user wants ", "the weather."];

// xAI's reasoning models (https://docs.x.ai/docs/guides/reasoning): grok-3-mini, grok-4 and later.
const xaiReasons = (m) => !m.includes("non-reasoning") && (/^grok-3-mini/.test(m) || /^grok-([4-9]|\d\d)/.test(m));
const reasons = (provider, model) =>
  (provider === "deepseek" && model === "deepseek-reasoner") ||
  (provider === "openrouter" && /r1|reason|think/.test(model)) ||
  (provider === "ollama" && /^(gpt-oss|qwen3|deepseek-r1)/.test(model)) ||
  (provider === "xai" && model === "grok-3-mini");

// What each provider refuses in a request, as it words it: [status, body] or null.
const REFUSE = {
  mistral(b) {
    if ("stream_options" in b)
      return [422, { object: "error", message: { detail: [{ type: "extra_forbidden", loc: ["body", "stream_options"], msg: "Extra inputs are not permitted", input: b.stream_options }] }, type: "invalid_request_message_error", param: null, code: null }];
    for (const m of b.messages) {
      for (const id of [...(m.tool_calls ?? []).map((c) => c.id), ...(m.role === "tool" ? [m.tool_call_id] : [])])
        if (!/^[A-Za-z0-9]{9}$/.test(String(id)))
          return [400, { object: "error", message: `Tool call id was ${id} but must be a-z, A-Z, 0-9, with a length of 9.`, type: "invalid_request_message_error", param: null, code: "3280" }];
    }
    return null;
  },
  groq(b) {
    const bad = ["logprobs", "top_logprobs", "logit_bias"].find((f) => b[f] !== undefined) ?? (b.messages.some((m) => "name" in m) ? "messages[].name" : null);
    if (bad) return [400, { error: { message: `'${bad}' : property '${bad}' is unsupported`, type: "invalid_request_error" } }];
    if (b.n !== undefined && b.n !== 1) return [400, { error: { message: "'n' : number must be at most 1", type: "invalid_request_error" } }];
    return null;
  },
  xai(b) {
    const bad = ["presence_penalty", "frequency_penalty", "stop"].find((f) => b[f] !== undefined);
    if (bad && xaiReasons(b.model)) return [400, { code: "Client specified an invalid argument", error: `Model ${b.model} does not support parameter ${bad}.` }];
    return null;
  },
  deepseek(b) {
    if (b.model !== "deepseek-reasoner") return null;
    // Turn by turn (between user messages): one with a tool call needs every assistant message's reasoning.
    let turn = [];
    const check = () => {
      if (!turn.some(([, m]) => m.tool_calls?.length)) return null;
      const missing = turn.find(([, m]) => typeof m.reasoning_content !== "string");
      return missing ? [400, { error: { message: `Missing \`reasoning_content\` field in the assistant message at message index ${missing[0]}. The \`reasoning_content\` in the thinking mode must be passed back to the API.`, type: "invalid_request_error", param: null, code: "invalid_request_error" } }] : null;
    };
    for (const [i, m] of b.messages.entries()) {
      if (m.role === "user") {
        const r = check();
        if (r) return r;
        turn = [];
      } else if (m.role === "assistant") turn.push([i, m]);
    }
    return check();
  },
  perplexity(b) {
    const roles = b.messages.map((m) => m.role);
    const rest = roles.slice(roles.findIndex((r) => r !== "system"));
    if (rest.some((r, i) => r === "system" || (i > 0 && r === rest[i - 1])))
      return [400, { error: { message: "After the (optional) system message(s), user and assistant roles should be alternating.", type: "invalid_message", code: 400 } }];
    return null;
  },
};

// A call id in the provider's own style.
const callId = (provider, n) => (provider === "mistral" ? ["D681PevKs", "Xq3Lm9Tz2"][n] : `call_${provider}_${n}`);

function answer(provider, b) {
  const tools = Array.isArray(b.tools) && b.tools.length > 0 && b.messages.at(-1)?.role === "user";
  const thinking = reasons(provider, b.model);
  const message = { role: "assistant", content: tools ? null : HELLO };
  if (tools) message.tool_calls = [{ id: callId(provider, 0), type: "function", function: { name: b.tools[0].function.name, arguments: '{"location":"Oslo"}' } }];
  if (thinking) message[provider === "openrouter" || provider === "ollama" ? "reasoning" : "reasoning_content"] = THOUGHT.join("");
  const usage = { ...USAGE };
  if (thinking) usage.completion_tokens_details = { reasoning_tokens: 6 };
  if (provider === "deepseek") Object.assign(usage, { prompt_cache_hit_tokens: 5, prompt_cache_miss_tokens: 20 });
  if (provider === "openrouter") Object.assign(usage, { cost: 0.00042, cost_details: { upstream_inference_cost: null } });
  const out = { id: `gen-${provider}`, object: "chat.completion", created: 1757000000, model: b.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: tools ? "tool_calls" : "stop" }], usage };
  if (provider === "groq") out.x_groq = { id: "req_01" };
  if (provider === "perplexity") Object.assign(out, { citations: ["https://example.com/a"], search_results: [{ title: "A", url: "https://example.com/a" }] });
  if (provider === "openrouter") out.provider = "DeepInfra";
  return { out, tools, thinking, message, usage };
}

async function stream(res, provider, b) {
  const { tools, thinking, message, usage } = answer(provider, b);
  const asked = b.stream_options?.include_usage === true;
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const base = { id: `gen-${provider}`, object: "chat.completion.chunk", created: 1757000000, model: b.model };
  let produced = 0;
  const send = async (delta, finish = null, extra = {}) => {
    produced += 1;
    const c = { ...base, choices: [{ index: 0, delta, finish_reason: finish }], ...extra };
    // xAI: the running total so far on every chunk (its streaming guide), 15 at the end.
    if (provider === "xai" && !extra.usage) c.usage = { prompt_tokens: 25, completion_tokens: produced, total_tokens: 25 + produced };
    if (provider === "fireworks" && !("usage" in c)) c.usage = null;
    if (provider === "groq") c.x_groq = { id: "req_01", ...extra.x_groq };
    res.write(`data: ${JSON.stringify(c)}\n\n`);
    await sleep(1);
  };
  if (provider === "openrouter") res.write(": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n");
  await send({ role: "assistant", content: "" });
  if (thinking) {
    const key = provider === "openrouter" || provider === "ollama" ? "reasoning" : "reasoning_content";
    for (const t of THOUGHT) await send({ content: "", [key]: t });
    if (provider === "openrouter") res.write(": OPENROUTER PROCESSING\n\n");
  }
  if (tools) {
    const c = message.tool_calls[0];
    await send({ tool_calls: [{ index: 0, id: c.id, type: "function", function: { name: c.function.name, arguments: "" } }] });
    await send({ tool_calls: [{ index: 0, function: { arguments: c.function.arguments } }] });
  } else {
    const words = HELLO.split(/(?<= )/);
    for (const [i, w] of words.entries()) {
      if (b.model === "midstream" && i === 2) {
        res.write(`data: ${JSON.stringify({ ...base, error: { code: 502, message: "Provider returned error" }, choices: [{ index: 0, delta: { content: "" }, finish_reason: "error" }] })}\n\n`);
        return res.end("data: [DONE]\n\n");
      }
      await send({ content: w }, null, provider === "perplexity" ? { citations: ["https://example.com/a"] } : {});
    }
  }
  const finish = tools ? "tool_calls" : "stop";
  // Where each puts the final usage.
  switch (provider) {
    case "mistral": case "together": case "openrouter": case "perplexity": case "xai":
      await send({}, finish, { usage });
      break;
    case "fireworks":
      await send({}, finish, asked ? { usage } : {});
      break;
    case "groq":
      await send({}, finish, { x_groq: { usage: { queue_time: 0.01, ...usage, prompt_time: 0.002, completion_time: 0.01, total_time: 0.012 } } });
      if (asked) res.write(`data: ${JSON.stringify({ ...base, choices: [], usage, x_groq: { id: "req_01" } })}\n\n`);
      break;
    default: // deepseek, ollama, vllm: OpenAI's rule
      await send({}, finish);
      if (asked) res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}

export async function startCompat({ key }) {
  const compat = { requests: [], prefixes: PREFIXES };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const send = (status, body) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      };
      const provider = Object.keys(PREFIXES).find((p) => req.url === `${PREFIXES[p]}/chat/completions`);
      if (!provider) return send(404, { error: { message: `no such path ${req.url}` } });
      const keyed = provider !== "ollama";
      if (keyed && req.headers.authorization !== `Bearer ${key}`)
        return send(401, { error: { message: "Invalid API Key", type: "invalid_request_error", code: "invalid_api_key" } });
      let b;
      try {
        b = JSON.parse(Buffer.concat(chunks).toString());
      } catch {
        return send(400, { error: { message: "invalid JSON" } });
      }
      compat.requests.push({ provider, path: req.url, headers: req.headers, body: b });
      if (!Array.isArray(b.messages) || typeof b.model !== "string") return send(400, { error: { message: "model and messages are required" } });
      const refused = REFUSE[provider]?.(b);
      if (refused) return send(...refused);
      if (b.stream) return stream(res, provider, b);
      return send(200, answer(provider, b).out);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  compat.url = `http://127.0.0.1:${server.address().port}`;
  compat.base = (provider) => compat.url + PREFIXES[provider];
  compat.last = (provider) => compat.requests.findLast((r) => !provider || r.provider === provider);
  compat.close = () => new Promise((r) => { server.closeAllConnections(); server.close(r); });
  return compat;
}
