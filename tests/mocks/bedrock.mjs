// A local stand-in for Amazon Bedrock's runtime API: Converse, ConverseStream, InvokeModel and
// InvokeModelWithResponseStream at their real paths, checking each request as AWS does before
// answering. The signature is recomputed with AWS's own SigV4 signer (@smithy/signature-v4,
// double-encoding the path as AWS does for every service but S3) over exactly the headers the
// request says it signed; an unknown key, a temporary key without its session token, a clock
// more than 5 minutes off or a signature that does not match is refused as AWS refuses it
// (`x-amzn-ErrorType` and a bare `{"message"}`). Streams are written in AWS's event-stream
// framing by AWS's own codec (@smithy/eventstream-codec).
//
// What a model does is chosen by its id's suffix:
//   *-throttled    429 ThrottlingException          *-notready     429 ModelNotReadyException
//   *-unavailable  503 ServiceUnavailableException  *-toolong      400 "Input is too long…"
//   *-throttled-frame, *-notready-frame  stream: a throttlingException (modelNotReadyException)
//                  frame before any content (Converse)
//   *-midstream    stream: text, then a modelStreamErrorException frame
//   *-badcrc       stream: text, then a frame whose message CRC is wrong
//   *-guardrail    stopReason guardrail_intervened
//   *-cached       usage with cache reads and writes
// Anything else answers "Hello, world! ünïcødé ✓", or calls get_weather and get_time when the
// request declares tools and its last message is the user's.
import http from "node:http";
import { sigv4Refusal } from "./sigv4.mjs";
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";

export const HELLO = "Hello, world! ünïcødé ✓";
const codec = new EventStreamCodec(toUtf8, fromUtf8);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/";

/** `keys`: {accessKeyId: {secret, session?}}. */
export async function startBedrock({ keys }) {
  const bedrock = { requests: [], seen: { signed: 0, refused: {} } };
  const refuse = (res, status, type, message) => {
    bedrock.seen.refused[type] = (bedrock.seen.refused[type] ?? 0) + 1;
    res.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type + TYPE_SUFFIX, "x-amzn-requestid": "00000000-0000-0000-0000-000000000000" });
    res.end(JSON.stringify({ message }));
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks);
      const route = /^\/model\/([^/]+)\/(converse|converse-stream|invoke|invoke-with-response-stream)$/.exec(req.url);
      if (req.method !== "POST" || !route) return refuse(res, 404, "UnknownOperationException", "Unknown operation");
      const denied = await verify(req, raw, keys);
      if (denied) return refuse(res, ...denied);
      bedrock.seen.signed++;
      const model = decodeURIComponent(route[1]);
      const op = route[2];
      let body;
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        return refuse(res, 400, "ValidationException", "Malformed input request, please reformat your input and try again.");
      }
      bedrock.requests.push({ op, model, path: req.url, headers: req.headers, body });
      const invalid = op.startsWith("invoke") ? invokeProblem(body) : converseProblem(body);
      if (invalid) return refuse(res, 400, "ValidationException", invalid);
      if (model.endsWith("-throttled")) return refuse(res, 429, "ThrottlingException", "Too many requests, please wait before trying again.");
      if (model.endsWith("-notready")) return refuse(res, 429, "ModelNotReadyException", "Model is not ready to serve inference requests.");
      if (model.endsWith("-unavailable")) return refuse(res, 503, "ServiceUnavailableException", "Service unavailable. Try again later.");
      if (model.endsWith("-toolong")) return refuse(res, 400, "ValidationException", "Input is too long for requested model.");
      const tools = op.startsWith("invoke") ? (body.tools?.length ?? 0) > 0 : (body.toolConfig?.tools?.length ?? 0) > 0;
      const last = body.messages.at(-1);
      const calls = tools && last.role === "user" && !JSON.stringify(last.content).includes("toolResult") && !JSON.stringify(last.content).includes("tool_result");
      const answer = { model, calls, cached: model.endsWith("-cached"), guardrail: model.endsWith("-guardrail") };
      switch (op) {
        case "converse":
          return json(res, converseAnswer(answer));
        case "invoke":
          return json(res, anthropicMessage(answer));
        case "converse-stream":
          return frames(res, model, converseEvents(answer).map(([type, payload]) => event(type, payload)));
        default:
          return frames(res, model, anthropicEvents(answer).map((e) => event("chunk", { bytes: Buffer.from(JSON.stringify(e)).toString("base64") })));
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  bedrock.url = `http://127.0.0.1:${server.address().port}`;
  bedrock.last = () => bedrock.requests.at(-1);
  bedrock.close = () => new Promise((r) => server.close(r));
  return bedrock;
}

// Bedrock's answers to a request SigV4 does not verify (tests/mocks/sigv4.mjs).
const REFUSED = {
  malformed: [400, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters."],
  unknown_key: [403, "UnrecognizedClientException", "The security token included in the request is invalid."],
  wrong_service: [403, "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."],
  bad_date: [400, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'."],
  expired: [403, "InvalidSignatureException", "Signature expired."],
  unsigned_header: [403, "InvalidSignatureException", "'Host' must be a signed header."],
  mismatch: [403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."],
};

async function verify(req, raw, keys) {
  const why = await sigv4Refusal(req, raw, keys, { service: "bedrock" });
  return why && REFUSED[why];
}

// What Bedrock's validation refuses of an invoke body (Claude's Messages format on Bedrock).
function invokeProblem(body) {
  for (const k of ["model", "stream"]) if (k in body) return `Malformed input request: extraneous key [${k}] is not permitted, please reformat your input and try again.`;
  if (body.anthropic_version !== "bedrock-2023-05-31") return "Malformed input request: #: required key [anthropic_version] not found, please reformat your input and try again.";
  if (!Array.isArray(body.messages) || !body.messages.length) return "Malformed input request: #/messages: expected minimum item count: 1";
  return null;
}

// What Converse refuses: its own field names only, and a toolConfig whenever tool blocks are present.
function converseProblem(body) {
  const allowed = ["messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields", "additionalModelResponseFieldPaths", "performanceConfig", "promptVariables", "requestMetadata"];
  for (const k of Object.keys(body)) if (!allowed.includes(k)) return `1 validation error detected: Value at '${k}' is not a recognized field.`;
  if (!Array.isArray(body.messages) || !body.messages.length) return "A conversation must start with a user message. Try again with a conversation that starts with a user message.";
  const blocks = body.messages.flatMap((m) => m.content ?? []);
  if (blocks.some((b) => b.toolUse || b.toolResult) && !body.toolConfig)
    return "The toolConfig field must be defined when using toolUse and toolResult content blocks.";
  for (const b of blocks) if (b.image && !/^[A-Za-z0-9+/]+=*$/.test(b.image.source?.bytes ?? "")) return "The provided image bytes are not valid.";
  return null;
}

const usage = ({ cached }) =>
  cached ? { inputTokens: 25, outputTokens: 15, totalTokens: 1065, cacheReadInputTokens: 1000, cacheWriteInputTokens: 25 } : { inputTokens: 25, outputTokens: 15, totalTokens: 40 };
const TOOL_CALLS = [
  { toolUseId: "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", name: "get_weather", input: { location: "San Francisco, CA" } },
  { toolUseId: "tooluse_2sPlK8xsT8qUYn0bS4NHhA", name: "get_time", input: {} },
];

function converseAnswer(a) {
  const content = a.calls ? [{ text: "Let me check." }, ...TOOL_CALLS.map((toolUse) => ({ toolUse }))] : [{ text: HELLO }];
  const stopReason = a.guardrail ? "guardrail_intervened" : a.calls ? "tool_use" : "end_turn";
  return { output: { message: { role: "assistant", content } }, stopReason, usage: usage(a), metrics: { latencyMs: 312 } };
}

function converseEvents(a) {
  const ev = [["messageStart", { role: "assistant" }]];
  const words = a.calls ? ["Let me ", "check."] : ["Hello, ", "world! ", "ünïcødé ✓"];
  for (const text of words) ev.push(["contentBlockDelta", { contentBlockIndex: 0, delta: { text } }]);
  ev.push(["contentBlockStop", { contentBlockIndex: 0 }]);
  if (a.calls)
    TOOL_CALLS.forEach((t, i) => {
      const index = i + 1;
      ev.push(["contentBlockStart", { contentBlockIndex: index, start: { toolUse: { toolUseId: t.toolUseId, name: t.name } } }]);
      const args = JSON.stringify(t.input);
      for (const part of [args.slice(0, 5), args.slice(5)]) if (part) ev.push(["contentBlockDelta", { contentBlockIndex: index, delta: { toolUse: { input: part } } }]);
      ev.push(["contentBlockStop", { contentBlockIndex: index }]);
    });
  ev.push(["messageStop", { stopReason: a.guardrail ? "guardrail_intervened" : a.calls ? "tool_use" : "end_turn" }]);
  ev.push(["metadata", { usage: usage(a), metrics: { latencyMs: 312 } }]);
  if (a.model.endsWith("-throttled-frame")) return [["!exception", "throttlingException"]];
  if (a.model.endsWith("-notready-frame")) return [["!exception", "modelNotReadyException"]];
  return ev;
}

function anthropicMessage(a) {
  const content = a.calls
    ? [{ type: "text", text: "Let me check." }, ...TOOL_CALLS.map((t) => ({ type: "tool_use", id: t.toolUseId, name: t.name, input: t.input }))]
    : [{ type: "text", text: HELLO }];
  const u = usage(a);
  return {
    id: "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL",
    type: "message",
    role: "assistant",
    model: "claude-sonnet-4-5-20250929",
    content,
    stop_reason: a.calls ? "tool_use" : "end_turn",
    stop_sequence: null,
    usage: { input_tokens: u.inputTokens, output_tokens: u.outputTokens, cache_read_input_tokens: u.cacheReadInputTokens ?? 0, cache_creation_input_tokens: u.cacheWriteInputTokens ?? 0 },
  };
}

// Claude's own stream events, as invoke-with-response-stream carries them in `chunk`s.
function anthropicEvents(a) {
  const m = anthropicMessage(a);
  const ev = [{ type: "message_start", message: { ...m, content: [], stop_reason: null, usage: { ...m.usage, output_tokens: 1 } } }];
  m.content.forEach((b, index) => {
    if (b.type === "text") {
      ev.push({ type: "content_block_start", index, content_block: { type: "text", text: "" } });
      ev.push({ type: "content_block_delta", index, delta: { type: "text_delta", text: b.text } });
    } else {
      ev.push({ type: "content_block_start", index, content_block: { type: "tool_use", id: b.id, name: b.name, input: {} } });
      ev.push({ type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: JSON.stringify(b.input) } });
    }
    ev.push({ type: "content_block_stop", index });
  });
  ev.push({ type: "message_delta", delta: { stop_reason: m.stop_reason, stop_sequence: null }, usage: { output_tokens: m.usage.output_tokens } });
  ev.push({ type: "message_stop", "amazon-bedrock-invocationMetrics": { inputTokenCount: m.usage.input_tokens, outputTokenCount: m.usage.output_tokens, invocationLatency: 312, firstByteLatency: 100 } });
  return ev;
}

// One frame: an event, an exception, or a frame whose CRC is broken.
function event(type, payload) {
  const str = (value) => ({ type: "string", value });
  if (type === "!exception")
    return codec.encode({
      headers: { ":message-type": str("exception"), ":exception-type": str(payload), ":content-type": str("application/json") },
      body: fromUtf8(JSON.stringify({ message: "The model stopped: it could not continue the stream. Quote: secret prompt text" })),
    });
  if (type === "!badcrc") {
    const frame = codec.encode({ headers: { ":message-type": str("event"), ":event-type": str("contentBlockDelta") }, body: fromUtf8('{"contentBlockIndex":0,"delta":{"text":"x"}}') });
    frame[frame.length - 1] ^= 0xff;
    return frame;
  }
  const body = fromUtf8(JSON.stringify({ ...payload, p: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".slice(0, 7 + (type.length % 20)) }));
  return codec.encode({ headers: { ":event-type": str(type), ":content-type": str("application/json"), ":message-type": str("event") }, body });
}

function json(res, body) {
  res.writeHead(200, { "content-type": "application/json", "x-amzn-requestid": "00000000-0000-0000-0000-000000000001" });
  res.end(JSON.stringify(body));
}

// Frames written as they would arrive, a few bytes apart (one frame split in two).
async function frames(res, model, list) {
  // Content first, then the failure: the frames up to the first text, and the bad one.
  if (model.endsWith("-midstream")) list = [...list.slice(0, 3), event("!exception", "modelStreamErrorException")];
  if (model.endsWith("-badcrc")) list = [...list.slice(0, 3), event("!badcrc")];
  res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": "00000000-0000-0000-0000-000000000002" });
  for (const f of list) {
    const cut = Math.floor(f.length / 2);
    res.write(Buffer.from(f.subarray(0, cut)));
    await sleep(1);
    res.write(Buffer.from(f.subarray(cut)));
  }
  res.end();
}
