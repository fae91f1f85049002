// The `cached-*` models of the LLM stand-in: answers whose usage has prompt caching and reasoning,
// in each provider's shape, JSON and streamed (the recorded tests/fixtures/llm/*_cached.sse, the
// same the unit tests replay). Used by tests/e2e/ledger.test.mjs.
//   cached-claude  Anthropic: 50 fresh input tokens, 10,000 read from the cache, 3,000 written to
//                  it (1,000 for 5 minutes, 2,000 for an hour), 400 output
//   cached-gpt     OpenAI chat: 2,006 prompt tokens of which 1,920 cached, 300 completion
//   cached-o4      OpenAI Responses: 5,000 input of which 4,096 cached, 800 output of which
//                  640 reasoning
// As the real services do, an OpenAI stream has its usage chunk only when the request asked for
// it (`stream_options.include_usage`), and Anthropic refuses a request without `max_tokens`.
import { readFileSync } from "node:fs";
import path from "node:path";

const FIX = path.join(import.meta.dirname, "..", "fixtures", "llm");
const fixture = (name) => readFileSync(path.join(FIX, name), "utf8");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The `data:` JSON of each event of a recorded stream. */
const datas = (text) =>
  text.split(/\r?\n\r?\n/).filter((b) => b.includes("data: {")).map((b) => JSON.parse(b.slice(b.indexOf("data: ") + 6)));

async function replay(res, events) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (const part of events) {
    res.write(part);
    await sleep(2);
  }
  res.end();
}
const parts = (text) => text.split(/(?<=\n\n)/);

function claude(res, send, { body, anthropic }) {
  if (!anthropic) return send(404, { error: { message: "cached-claude is an Anthropic model" } });
  if (typeof body.max_tokens !== "number")
    return send(400, { type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" } });
  const text = fixture("anthropic_cached.sse");
  if (body.stream) return replay(res, parts(text));
  const [start] = datas(text);
  const usage = datas(text).find((d) => d.type === "message_delta").usage;
  return send(200, { ...start.message, model: body.model, content: [{ type: "text", text: "Hello, world! ünïcødé ✓" }],
    stop_reason: "end_turn", usage: { ...start.message.usage, ...usage } });
}

function gpt(res, send, { body, openai, responses }) {
  if (!openai || responses) return send(404, { error: { message: "cached-gpt is a chat model", type: "invalid_request_error" } });
  const text = fixture("openai_cached.sse");
  if (body.stream) {
    const asked = body.stream_options?.include_usage === true;
    return replay(res, parts(text).filter((p) => asked || !p.includes('"choices":[]')));
  }
  const usage = datas(text).at(-1).usage;
  return send(200, { id: "chatcmpl-CCa1", object: "chat.completion", created: 1757000000, model: body.model, system_fingerprint: "fp_cbf1785567",
    choices: [{ index: 0, message: { role: "assistant", content: "Hello, world! ünïcødé ✓", refusal: null }, logprobs: null, finish_reason: "stop" }], usage });
}

function o4(res, send, { body, responses }) {
  if (!responses) return send(404, { error: { message: "cached-o4 answers the Responses API here", type: "invalid_request_error" } });
  const text = fixture("openai_responses_cached.sse");
  if (body.stream) return replay(res, parts(text));
  return send(200, { ...datas(text).at(-1).response, model: body.model });
}

export const USAGE = { "cached-claude": claude, "cached-gpt": gpt, "cached-o4": o4 };
