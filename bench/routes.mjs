// The gateway routes that `make bench` and `make profile` load, configured for a `bench` tenant
// whose third parties are all the bench upstream: each route's URL, headers and wrk script, by
// family. Limits are on, as a production tenant has them, and high enough never to refuse.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { tmpdir } from "node:os";
import { createHmac, randomBytes } from "node:crypto";
import { sign } from "../tests/signers.mjs";

/** A wrk script sending `body` by POST (as JSON unless `headers` say otherwise). */
export function postScript(body, headers = { "content-type": "application/json" }) {
  const f = path.join(tmpdir(), `bench-${randomBytes(4).toString("hex")}.lua`);
  const lines = [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(body)}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  writeFileSync(f, lines.join("\n") + "\n");
  return f;
}

export const llmBody = { model: "fast", messages: [{ role: "user", content: "Say something." }], max_tokens: 64 };
export const responsesBody = { model: "fast", input: "Say something.", max_output_tokens: 64 };
export const embeddingsBody = { model: "fast", input: ["Say something.", "Anything."], encoding_format: "float" };

/** Configures the bench tenant on `gw` and returns its API key. */
export async function benchTenant(gw) {
  await gw.admin("PUT", "bench", { name: "Bench" });
  return (await gw.admin("POST", "bench/keys", { scopes: ["*"] })).body.key;
}

/**
 * Webhook sources on `gw`: telegram and standard (signed with `stdSecret`), each a new event every
 * request, and one signed standard event again and again (a duplicate). Each route's `deliveries`:
 * how many deliveries to the upstream each request the gateway accepts makes (bench/quiet.mjs).
 */
export async function webhookRoutes(gw, upstream, stdSecret = "whsec_" + randomBytes(24).toString("base64")) {
  const whsec = "whsec_" + randomBytes(32).toString("base64");
  const tgToken = "bench-tg-" + randomBytes(8).toString("hex");
  await gw.admin("PUT", "bench", { name: "Bench", destination: { url: `${upstream.url}/hooks`, secret: whsec } });
  await gw.admin("PUT", "bench/sources/tg", { kind: "telegram", secrets: [tgToken] });
  await gw.admin("PUT", "bench/sources/std", { kind: "standard", secrets: [stdSecret] });
  // Every request a new update_id: the full verify + dedupe + enqueue path (and delivery behind it).
  const fresh = path.join(tmpdir(), `bench-webhook-${randomBytes(4).toString("hex")}.lua`);
  writeFileSync(fresh, `
local n = 0
local prefix = math.floor(os.clock() * 1000000) + ${Date.now() % 1000000} * 1000
request = function()
  n = n + 1
  local body = '{"update_id":' .. (prefix * 100000 + n) .. ',"message":{"message_id":1,"date":1700000000,"chat":{"id":42,"type":"private"},"text":"hi"}}'
  return wrk.format("POST", nil, {["content-type"] = "application/json", ["x-telegram-bot-api-secret-token"] = "${tgToken}"}, body)
end
`);
  const stdBody = JSON.stringify({ type: "invoice.paid", data: { id: "in_1" } });
  return {
    whsec,
    tgToken,
    stdSecret,
    // A new Standard Webhooks event each request: HMAC + dedupe + enqueue (+ delivery).
    signed: { url: new URL("/v1/webhooks/bench/std", gw.url).href, headers: {}, script: signedEvents(stdSecret, stdBody), deliveries: 1 },
    fresh: { url: new URL("/v1/webhooks/bench/tg", gw.url).href, headers: {}, script: fresh, deliveries: 1 },
    duplicate: {
      url: new URL("/v1/webhooks/bench/std", gw.url).href,
      headers: sign.standard(stdSecret, stdBody, { id: "msg_bench_dup" }),
      script: postScript(stdBody),
      deliveries: 0, // answered as a duplicate; its first request is a new event, delivered once
    },
  };
}

/**
 * Pins `webhookRoutes`' sources to the tenant's own destination: a source without a list feeds
 * every destination, so the routes added next (fan-out, SQS, ordered) would otherwise get their events too.
 */
export async function defaultOnly(gw, hooks) {
  await gw.admin("PUT", "bench/sources/std", { kind: "standard", secrets: [hooks.stdSecret], destinations: ["default"] });
  await gw.admin("PUT", "bench/sources/tg", { kind: "telegram", secrets: [hooks.tgToken], destinations: ["default"] });
}

/**
 * A standard source `std3` whose every event fans out to three destinations (the tenant's own and
 * two more, all the bench upstream), next to `webhookRoutes`' sources, which then feed the
 * tenant's own destination alone.
 */
export async function fanoutRoute(gw, upstream, hooks) {
  for (const d of ["d2", "d3"]) {
    const r = await gw.admin("PUT", `bench/destinations/${d}`, { url: `${upstream.url}/hooks`, secret: hooks.whsec });
    if (r.status !== 201 && r.status !== 200) throw new Error(`destination ${d}: ${r.status} ${r.text}`);
  }
  await defaultOnly(gw, hooks);
  await gw.admin("PUT", "bench/sources/std3", { kind: "standard", secrets: [hooks.stdSecret], destinations: ["default", "d2", "d3"] });
  const stdBody = JSON.stringify({ type: "invoice.paid", data: { id: "in_1" } });
  return { url: new URL("/v1/webhooks/bench/std3", gw.url).href, headers: {}, script: signedEvents(hooks.stdSecret, stdBody), deliveries: 3 };
}

/**
 * A standard source `stdsqs` feeding one SQS destination (the bench upstream answering
 * `SendMessage`): each delivery is a SigV4-signed message instead of a webhook POST.
 */
export async function sqsRoute(gw, upstream, hooks) {
  const aws = { region: "us-east-1", access_key_id: "AKIABENCHBENCHBENCH0", secret_access_key: randomBytes(30).toString("base64") };
  const r = await gw.admin("PUT", "bench/destinations/sqs", { kind: "sqs", url: `${upstream.url}/123456789012/bench`, secret: hooks.whsec, aws });
  if (r.status !== 201 && r.status !== 200) throw new Error(`destination sqs: ${r.status} ${r.text}`);
  await gw.admin("PUT", "bench/sources/stdsqs", { kind: "standard", secrets: [hooks.stdSecret], destinations: ["sqs"] });
  const stdBody = JSON.stringify({ type: "invoice.paid", data: { id: "in_1" } });
  return { url: new URL("/v1/webhooks/bench/stdsqs", gw.url).href, headers: {}, script: signedEvents(hooks.stdSecret, stdBody), deliveries: 1 };
}

/**
 * A standard source `stdord` feeding one ordered destination, its events spread over 50 ordering
 * keys (`data.customer`, the source's own `ordering_key`): each event is numbered on its source's
 * dedupe round trip and offered to the destination's sequencer before it is delivered.
 */
export async function orderedRoute(gw, upstream, hooks) {
  const r = await gw.admin("PUT", "bench/destinations/ord", { url: `${upstream.url}/hooks`, secret: hooks.whsec, ordered: true });
  if (r.status !== 201 && r.status !== 200) throw new Error(`destination ord: ${r.status} ${r.text}`);
  const s = await gw.admin("PUT", "bench/sources/stdord", { kind: "standard", secrets: [hooks.stdSecret], destinations: ["ord"], ordering_key: "data.data.customer" });
  if (s.status !== 201 && s.status !== 200) throw new Error(`source stdord: ${s.status} ${s.text}`);
  const bodies = Array.from({ length: 50 }, (_, k) => JSON.stringify({ type: "invoice.paid", data: { id: "in_1", customer: `cus_${k}` } }));
  return { url: new URL("/v1/webhooks/bench/stdord", gw.url).href, headers: {}, script: signedEvents(hooks.stdSecret, bodies), deliveries: 1 };
}

/**
 * A wrk script posting `body` as a new Standard Webhooks event each request, signed with `secret`
 * (wrk's Lua has no HMAC: the signatures are made here). Each run of the script takes its own
 * block of ids, so a warm-up run never turns the measured run's events into duplicates.
 */
export function signedEvents(secret, body, perRun = 15000, runs = 8) {
  // Several bodies take turns (request i posts bodies[i % n]); one body is the common case.
  const bodies = Array.isArray(body) ? body : [body];
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const ts = Math.floor(Date.now() / 1000);
  const prefix = `msg_${randomBytes(6).toString("hex")}_`;
  const sigs = [];
  for (let i = 0; i < perRun * runs; i++) {
    // A SHA-256 HMAC is 44 characters of base64: the script slices them out of one string.
    sigs.push(createHmac("sha256", key).update(`${prefix}${i}.${ts}.${bodies[i % bodies.length]}`).digest("base64"));
  }
  const counter = path.join(tmpdir(), `bench-signed-${randomBytes(4).toString("hex")}.run`);
  writeFileSync(counter, "0");
  const f = path.join(tmpdir(), `bench-signed-${randomBytes(4).toString("hex")}.lua`);
  writeFileSync(f, `
local sigs = "${sigs.join("")}"
local bodies = { ${bodies.map((b) => JSON.stringify(b)).join(", ")} }
local count = ${sigs.length}
local f = io.open("${counter}", "r")
local run = tonumber(f:read("*a"))
f:close()
f = io.open("${counter}", "w")
f:write(tostring((run + 1) % ${runs}))
f:close()
local n = run * ${perRun}
request = function()
  local i = n % count
  n = n + 1
  local sig = sigs:sub(i * 44 + 1, i * 44 + 44)
  return wrk.format("POST", nil, {["content-type"] = "application/json", ["webhook-id"] = "${prefix}" .. i, ["webhook-timestamp"] = "${ts}", ["webhook-signature"] = "v1," .. sig}, bodies[(i % ${bodies.length}) + 1])
end
`);
  return f;
}

/** A WhatsApp channel whose Cloud API is the upstream. */
export async function channelRoute(gw, upstream, key) {
  await gw.admin("PUT", "bench/channels/wa", { kind: "whatsapp", base_url: upstream.url, phone_number_id: "1065", rate_limit_per_minute: 1000000000, credentials: { access_token: "bench-token" } });
  const body = JSON.stringify({ conversation_id: "16505551234", type: "text", text: "Your order shipped" });
  return { url: new URL("/v1/channels/wa/messages", gw.url).href, headers: { authorization: `Bearer ${key}` }, script: postScript(body) };
}

/** An integration whose provider is the upstream, uncached and cached. */
export async function integrationRoutes(gw, upstream, key) {
  await gw.admin("PUT", "bench/integrations/api", {
    name: "Bench API", base_url: upstream.url, rate_limit: { per_minute: 1000000000 },
    endpoints: {
      item: { method: "GET", path: "/items/{id}", response: { field_mappings: { id: "id", ok: "ok" } } },
      cached_item: { method: "GET", path: "/items/{id}", cache: { ttl_seconds: 300 }, response: { field_mappings: { id: "id", ok: "ok" } } },
    },
  });
  const script = postScript('{"input": {"id": "1"}}');
  const headers = { authorization: `Bearer ${key}` };
  return {
    uncached: { url: new URL("/v1/integrations/api/item", gw.url).href, headers, script },
    cached: { url: new URL("/v1/integrations/api/cached_item", gw.url).href, headers, script },
  };
}

/**
 * The same uncached integration call as an MCP `tools/call` (integrationRoutes installs it), by a
 * key with the `mcp` scope allowed that tool: what the MCP endpoint adds to the execute flow.
 */
export async function mcpRoute(gw, key) {
  const k = await gw.admin("POST", "bench/keys", { scopes: ["mcp"], allowed_tools: ["api__item"] });
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "api__item", arguments: { id: "1" } } });
  const headers = { authorization: `Bearer ${k.body.key}`, "mcp-protocol-version": "2025-11-25", accept: "application/json, text/event-stream" };
  return { url: new URL("/v1/mcp", gw.url).href, headers, script: postScript(body) };
}

/** Every detector, on requests (counted) and on answers (redacted): the guardrails' whole cost. */
const allDetectors = ["email", "phone", "card", "iban", "ssn", "ip", "secret"]
  .map((detector) => ({ detector, request: "log", response: "redact" }))
  .concat([
    { detector: "deny", terms: ["project zeus", "internal only"], request: "block", response: "redact" },
    { detector: "regex", name: "order_id", pattern: "ORD-\\d{8}", request: "log", response: "redact" },
  ]);

/**
 * LLM routes whose provider is the upstream's OpenAI-style API, streamed and not, in both
 * dialects; the same with every guardrail on; and a route whose answers are cached (the same
 * request again and again: hits after the first).
 */
export async function llmRoutes(gw, upstream, key) {
  await gw.admin("PUT", "bench/llm", {
    providers: {
      up: { kind: "openai_compatible", base_url: `${upstream.url}/v1` },
      bed: { kind: "bedrock", region: "us-east-1", base_url: upstream.url, aws: { access_key_id: "AKIAIOSFODNN7EXAMPLE", secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" } },
    },
    routes: {
      fast: [{ provider: "up", model: "bench-model" }],
      bedrock: [{ provider: "bed", model: "meta.llama3-3-70b-instruct-v1:0" }],
      guarded: { targets: [{ provider: "up", model: "bench-model" }], guardrails: allDetectors },
      cached: { targets: [{ provider: "up", model: "bench-model" }], cache: { ttl_seconds: 3600 } },
    },
    limits: { rpm: 1000000000, tpm: 1000000000000 },
  });
  const headers = { authorization: `Bearer ${key}` };
  const route = (p, body) => ({ url: new URL(p, gw.url).href, headers, body: JSON.stringify(body), script: postScript(JSON.stringify(body)) });
  const stream = { ...llmBody, stream: true };
  return {
    chat: route("/v1/chat/completions", llmBody),
    messages: route("/v1/messages", llmBody),
    chatStream: route("/v1/chat/completions", stream),
    messagesStream: route("/v1/messages", stream),
    chatGuarded: route("/v1/chat/completions", { ...llmBody, model: "guarded" }),
    chatGuardedStream: route("/v1/chat/completions", { ...stream, model: "guarded" }),
    chatCached: route("/v1/chat/completions", { ...llmBody, model: "cached" }),
    // Responses to a chat-only server: translated both ways.
    responses: route("/v1/responses", responsesBody),
    responsesStream: route("/v1/responses", { ...responsesBody, stream: true }),
    embeddings: route("/v1/embeddings", embeddingsBody),
    // Bedrock Converse: the body rewritten, signed (SigV4), the answer and frames read back.
    chatBedrock: route("/v1/chat/completions", { ...llmBody, model: "bedrock" }),
    chatBedrockStream: route("/v1/chat/completions", { ...stream, model: "bedrock" }),
  };
}
