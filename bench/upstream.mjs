// A fast local upstream: answers every request with a small fixed JSON body, and
// `POST .../chat/completions` as an OpenAI-style model would (a completion, or an SSE stream of
// twelve chunks with usage when the body asks for `stream`), `POST .../embeddings`, and Bedrock's
// `POST /model/{id}/converse` and `/converse-stream` (the same text, in AWS's framing), and SQS's
// `SendMessage` (JSON protocol, `X-Amz-Target: AmazonSQS.SendMessage`) for an SQS destination.
import http from "node:http";
import { createHash, randomUUID } from "node:crypto";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

// Also a valid WhatsApp Cloud API answer, so the gateway's channel send can use it as the provider.
const body = Buffer.from(JSON.stringify({ ok: true, id: "bench", messaging_product: "whatsapp", messages: [{ id: "wamid.bench" }] }));
const completion = Buffer.from(JSON.stringify({
  id: "chatcmpl-bench", object: "chat.completion", created: 1757000000, model: "bench-model",
  choices: [{ index: 0, message: { role: "assistant", content: "The quick brown fox jumps over the lazy dog." }, finish_reason: "stop", logprobs: null }],
  usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 },
}));
const chunk = (delta, finish = null) => `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1757000000, model: "bench-model", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const words = "The quick brown fox jumps over the lazy dog .".split(" ");
const stream = Buffer.from([
  chunk({ role: "assistant", content: "" }),
  ...words.map((w, i) => chunk({ content: (i ? " " : "") + w })),
  chunk({}, "stop"),
  `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created: 1757000000, model: "bench-model", choices: [], usage: { prompt_tokens: 12, completion_tokens: 10, total_tokens: 22 } })}\n\n`,
  "data: [DONE]\n\n",
].join(""));

// Bedrock's Converse answer and ConverseStream frames for the same text (AWS's own encoder; the
// bench does not check signatures, the tests do).
const converse = Buffer.from(JSON.stringify({
  output: { message: { role: "assistant", content: [{ text: "The quick brown fox jumps over the lazy dog." }] } },
  stopReason: "end_turn", usage: { inputTokens: 12, outputTokens: 10, totalTokens: 22 }, metrics: { latencyMs: 100 },
}));
const codec = new EventStreamCodec(toUtf8, fromUtf8);
const frame = (type, payload) => codec.encode({
  headers: { ":event-type": { type: "string", value: type }, ":content-type": { type: "string", value: "application/json" }, ":message-type": { type: "string", value: "event" } },
  body: fromUtf8(JSON.stringify({ ...payload, p: "abcdefgh" })),
});
const converseStream = Buffer.concat([
  frame("messageStart", { role: "assistant" }),
  ...words.map((w, i) => frame("contentBlockDelta", { contentBlockIndex: 0, delta: { text: (i ? " " : "") + w } })),
  frame("contentBlockStop", { contentBlockIndex: 0 }),
  frame("messageStop", { stopReason: "end_turn" }),
  frame("metadata", { usage: { inputTokens: 12, outputTokens: 10, totalTokens: 22 }, metrics: { latencyMs: 100 } }),
].map((f) => Buffer.from(f)));

// Two 256-dimension vectors, as `POST .../embeddings` answers.
const embeddings = Buffer.from(JSON.stringify({
  object: "list", model: "bench-embed", usage: { prompt_tokens: 6, total_tokens: 6 },
  data: [0, 1].map((index) => ({ object: "embedding", index, embedding: Array.from({ length: 256 }, (_, k) => Math.sin(k + index) / 16) })),
}));

/**
 * `faultRate`: that share of answers is a 503 (`make soak`). `hooks`: the `webhook-id` of each
 * event delivery the upstream took (its `/hooks` path is a tenant's destination); `repeats.n`:
 * deliveries of an id it had taken already (at-least-once made visible).
 */
export function startUpstream({ faultRate = 0 } = {}) {
  const hooks = new Set();
  const repeats = { n: 0 };
  const took = (id) => {
    if (hooks.has(id)) repeats.n++;
    hooks.add(id);
  };
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        if (faultRate > 0 && Math.random() < faultRate) {
          res.writeHead(503, { "content-type": "application/json" });
          return res.end('{"error":"injected"}');
        }
        if (req.url === "/hooks") took(req.headers["webhook-id"]);
        // SQS: the delivery's id is a message attribute; the bench does not check signatures.
        if (req.headers["x-amz-target"] === "AmazonSQS.SendMessage") {
          const sent = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          took(sent.MessageAttributes?.["webhook-id"]?.StringValue);
          const out = Buffer.from(JSON.stringify({ MD5OfMessageBody: createHash("md5").update(sent.MessageBody ?? "").digest("hex"), MessageId: randomUUID() }));
          res.writeHead(200, { "content-type": "application/x-amz-json-1.0", "content-length": out.length });
          return res.end(out);
        }
        if (req.url.endsWith("/embeddings")) {
          res.writeHead(200, { "content-type": "application/json", "content-length": embeddings.length });
          return res.end(embeddings);
        }
        if (req.url.startsWith("/model/")) {
          const streamed = req.url.endsWith("/converse-stream");
          const out = streamed ? converseStream : converse;
          res.writeHead(200, { "content-type": streamed ? "application/vnd.amazon.eventstream" : "application/json", "content-length": out.length });
          return res.end(out);
        }
        if (req.url.endsWith("/chat/completions")) {
          const streamed = Buffer.concat(chunks).includes('"stream":true');
          const out = streamed ? stream : completion;
          res.writeHead(200, { "content-type": streamed ? "text/event-stream" : "application/json", "content-length": out.length });
          return res.end(out);
        }
        res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
        res.end(body);
      });
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, "127.0.0.1", () => resolve({ server, hooks, repeats, url: `http://127.0.0.1:${server.address().port}` }));
  });
}
