// `make bench`: each route of the gateway next to a JavaScript reference doing the same I/O (the
// ten-line proxy for the LLM routes; bench/js-same-io.mjs for webhook ingress, channel send and
// integration execute), in one run, with wrk. Prints req/s, p50/p99 latency, each route's ratio to
// its reference and the CPU it adds per request, streamed time to first content, a fresh isolate's
// first answers (bench/cold.mjs), and the bundle's size and biggest parts. Figures depend on the
// machine; compare ratios within one run, not absolutes. Each row is measured on a quiet gateway (bench/quiet.mjs):
// after its warm-up, the run waits until every webhook event accepted so far has been delivered
// and no runtime of the run is using CPU, and says how long that took.
import { Miniflare } from "miniflare";
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { startGateway } from "../tests/harness.mjs";
import { startUpstream } from "./upstream.mjs";
import { benchTenant, channelRoute, embeddingsBody, fanoutRoute, integrationRoutes, llmBody, llmRoutes, mcpRoute, orderedRoute, postScript, signedEvents, sqsRoute, webhookRoutes } from "./routes.mjs";
import { bundleParts } from "./bundle.mjs";
import { firstContent, wrk as load } from "./load.mjs";
import { coldHeader, coldRow, coldStarts, jsFloorOptions, medians, printCompiled } from "./cold.mjs";
import { IDLE_MS, Quiet, quietNote } from "./quiet.mjs";
import { randomBytes } from "node:crypto";

const ROOT = path.resolve(import.meta.dirname, "..");
const DURATION = process.env.BENCH_SECONDS ?? "5";
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? "16";

const wrk = (url, headers, seconds = DURATION, connections = CONNECTIONS, script) => load(url, headers, seconds, connections, script);

function bundleSize() {
  const dir = path.join(ROOT, "build");
  let raw = 0;
  let gz = 0;
  for (const f of readdirSync(dir)) {
    if (!/\.(wasm|js|mjs)$/.test(f)) continue;
    const b = readFileSync(path.join(dir, f));
    raw += b.length;
    gz += gzipSync(b, { level: 9 }).length;
  }
  return { raw, gz };
}

const upstream = await startUpstream();
const floorOptions = jsFloorOptions(upstream.url);
const floor = new Miniflare(floorOptions);
const floorUrl = await floor.ready;
// The same floor writing one log line a request, through the same log handling as the gateway's.
const loggingFloor = new Miniflare({ ...floorOptions, bindings: { ...floorOptions.bindings, LOG_LINE: "1" }, handleStructuredLogs: () => {} });
const loggingFloorUrl = await loggingFloor.ready;
const stdSecret = "whsec_" + randomBytes(24).toString("base64");
const reference = new Miniflare({
  modules: true,
  scriptPath: path.join(ROOT, "bench/js-same-io.mjs"),
  compatibilityDate: "2026-07-30",
  bindings: { UPSTREAM: upstream.url, WEBHOOK_SECRET: stdSecret },
  durableObjects: { REFERENCE: { className: "Reference", useSQLite: true } },
  queueProducers: { EVENTS: { queueName: "reference-events" } },
});
const referenceUrl = await reference.ready;
const gw = await startGateway();
const quiet = new Quiet(upstream);
quiet.track(gw);
const demoKey = "sk_dev_demo_local_only_0000000000";

const rows = [];
const notQuiet = [];
/** Waits for a quiet gateway (after a warm-up: its own events are drained too) and says so. */
async function quietFor(name) {
  const q = await quiet.wait();
  console.error(`${q.ok ? "quiet" : "NOT QUIET"} after ${(q.ms / 1000).toFixed(1)} s (${q.delivered} of ${q.expected} deliveries in, ${q.runtimes} runtimes watched, load ${q.load.toFixed(1)}): ${name}`);
  if (!q.ok) notQuiet.push(`${name}: ${quietNote(q)}`);
  return q;
}
const run = async (name, url, headers, baseline, script) => {
  await wrk(url, headers, 1, 4, script); // warm up isolates and caches
  const q = await quietFor(name);
  const r = await wrk(url, headers, DURATION, CONNECTIONS, script);
  rows.push({ name, ...r, baseline, quiet: q });
  return r;
};

const direct = await run("upstream direct", `${upstream.url}/json`);
await run("JS proxy floor -> upstream", new URL("/json", floorUrl).href, {}, "upstream direct");
await run("gateway GET /healthz", new URL("/healthz", gw.url).href, {}, "upstream direct");
await run("gateway GET /v1/me (auth)", new URL("/v1/me", gw.url).href, { authorization: `Bearer ${demoKey}` }, "upstream direct");

// BENCH_ONLY=llm measures the LLM rows alone (with the baselines they are compared to).
const only = process.env.BENCH_ONLY;
const benchKey = await benchTenant(gw);
const auth = { authorization: `Bearer ${benchKey}` };
if (only !== "llm") {
// Webhook ingress: a tenant whose destination is the same fast upstream.
const hooks = await webhookRoutes(gw, upstream, stdSecret);
const route = (name, r, baseline) => run(name, r.url, r.headers, baseline, r.script);
const stdBody = JSON.stringify({ type: "invoice.paid", data: { id: "in_1" } });
await run("ref: HMAC + DO + queue send", new URL("/ingress", referenceUrl).href, {}, undefined, signedEvents(stdSecret, stdBody));
await route("webhook new event, delivered (standard)", hooks.signed, "ref: HMAC + DO + queue send");
await route("webhook new event, delivered (telegram)", hooks.fresh, "ref: HMAC + DO + queue send");
// The same event fanned out to three destinations: ingress does the same work; the consumer
// queues three deliveries and makes them, on the same two cores.
// Quiet before the sources change: no event still queued goes to the new destinations.
await quietFor("the fan-out's sources");
const fanout = await fanoutRoute(gw, upstream, hooks);
quiet.deliveriesPerEvent(fanout.deliveries);
await route("webhook new event, 3 destinations (standard)", fanout, "ref: HMAC + DO + queue send");
// The same event to one SQS destination: the row measures ingress, as the others do; the
// consumer signs the SendMessage with SigV4 after the answer, off the measured path.
await quietFor("the SQS destination's source");
const sqs = await sqsRoute(gw, upstream, hooks);
quiet.deliveriesPerEvent(sqs.deliveries);
await route("webhook new event, SQS destination (SigV4)", sqs, "ref: HMAC + DO + queue send");
// Events over 50 ordering keys to an ordered destination: ingress numbers each on the dedupe
// round trip it already makes; the consumer offers it to the destination's sequencer.
await quietFor("the ordered destination's source");
const ordered = await orderedRoute(gw, upstream, hooks);
quiet.deliveriesPerEvent(ordered.deliveries);
await route("webhook new event, ordered destination (standard, 50 keys)", ordered, "ref: HMAC + DO + queue send");
// The same signed event again and again: verify (HMAC) + dedupe, answered as a duplicate.
await quietFor("the duplicates");
quiet.deliveriesPerEvent(hooks.duplicate.deliveries);
await route("webhook duplicate (standard, HMAC)", hooks.duplicate, "ref: HMAC + DO + queue send");

// Channel send: the same upstream playing the WhatsApp Cloud API, next to calling it directly
// with the same request.
const send = await channelRoute(gw, upstream, benchKey);
const waBody = JSON.stringify({ messaging_product: "whatsapp", recipient_type: "individual", to: "16505551234", type: "text", text: { preview_url: false, body: "Your order shipped" } });
await run("provider direct (WhatsApp send)", `${upstream.url}/v21.0/1065/messages`, { authorization: "Bearer bench-token" }, undefined, postScript(waBody));
await run("ref: DO + fetch + DO (send)", new URL("/send", referenceUrl).href, {}, undefined, postScript(waBody));
await route("channel send (whatsapp)", send, "ref: DO + fetch + DO (send)");

// Integration execute: the upstream as the provider, uncached and cached, next to calling it directly.
const exec = await integrationRoutes(gw, upstream, benchKey);
await run("provider direct (GET /items/1)", `${upstream.url}/items/1`, {});
await run("ref: DO + fetch + DO (execute)", new URL("/execute", referenceUrl).href, {}, undefined, postScript('{"input": {"id": "1"}}'));
await route("integration execute, uncached", exec.uncached, "ref: DO + fetch + DO (execute)");
await route("integration execute, cached", exec.cached, "ref: DO + fetch + DO (execute)");
await route("mcp tools/call (the uncached integration)", await mcpRoute(gw, benchKey), "ref: DO + fetch + DO (execute)");
}

// LLM proxy: an OpenAI-style upstream, next to the upstream called directly and the JS floor
// proxying it.
const llm = await llmRoutes(gw, upstream, benchKey);
const oaiBody = llmBody;
const directLlm = `${upstream.url}/v1/chat/completions`;
const directScript = (body) => postScript(JSON.stringify({ ...body, model: "bench-model" }));
await run("LLM upstream direct", directLlm, {}, undefined, directScript(oaiBody));
await run("JS proxy floor -> LLM upstream", new URL("/v1/chat/completions", floorUrl).href, {}, "LLM upstream direct", directScript(oaiBody));
await run("  the same + one log line", new URL("/v1/chat/completions", loggingFloorUrl).href, {}, "JS proxy floor -> LLM upstream", directScript(oaiBody));
await run("llm chat/completions", llm.chat.url, auth, "JS proxy floor -> LLM upstream", llm.chat.script);
await run("llm messages (translated)", llm.messages.url, auth, "JS proxy floor -> LLM upstream", llm.messages.script);
await run("LLM upstream direct, stream", directLlm, {}, undefined, directScript({ ...oaiBody, stream: true }));
await run("JS proxy floor -> LLM, stream", new URL("/v1/chat/completions", floorUrl).href, {}, "LLM upstream direct, stream", directScript({ ...oaiBody, stream: true }));
await run("llm chat/completions, stream", llm.chatStream.url, auth, "JS proxy floor -> LLM, stream", llm.chatStream.script);
await run("llm messages, stream (translated)", llm.messagesStream.url, auth, "JS proxy floor -> LLM, stream", llm.messagesStream.script);
await run("llm responses (translated)", llm.responses.url, auth, "JS proxy floor -> LLM upstream", llm.responses.script);
await run("llm responses, stream (translated)", llm.responsesStream.url, auth, "JS proxy floor -> LLM, stream", llm.responsesStream.script);
await run("llm chat/completions -> Bedrock Converse (SigV4)", llm.chatBedrock.url, auth, "JS proxy floor -> LLM upstream", llm.chatBedrock.script);
await run("llm chat, stream -> Bedrock ConverseStream (SigV4, event stream)", llm.chatBedrockStream.url, auth, "JS proxy floor -> LLM, stream", llm.chatBedrockStream.script);
await run("JS proxy floor -> embeddings", new URL("/v1/embeddings", floorUrl).href, {}, undefined, postScript(JSON.stringify({ ...embeddingsBody, model: "bench-embed" })));
await run("llm embeddings", llm.embeddings.url, auth, "JS proxy floor -> embeddings", llm.embeddings.script);
// Guardrails on (every detector, on the request and the answer) against off, same route otherwise.
await run("llm chat/completions, all guardrails", llm.chatGuarded.url, auth, "llm chat/completions", llm.chatGuarded.script);
await run("llm chat/completions, cache hits", llm.chatCached.url, auth, "llm chat/completions", llm.chatCached.script);
await run("llm chat, stream, all guardrails", llm.chatGuardedStream.url, auth, "llm chat/completions, stream", llm.chatGuardedStream.script);
// Usage counting (the isolate's tally, its batches, the Analytics Engine point) off against on:
// the same routes on a second gateway that counts nothing.
const gwOff = await startGateway({ extraBindings: { USAGE_COUNTING: "off" } });
const offKey = await benchTenant(gwOff);
const llmOff = await llmRoutes(gwOff, upstream, offKey);
const offAuth = { authorization: `Bearer ${offKey}` };
await run("llm chat/completions, usage counting off", llmOff.chat.url, offAuth, "llm chat/completions", llmOff.chat.script);
await run("llm chat, stream, usage counting off", llmOff.chatStream.url, offAuth, "llm chat/completions, stream", llmOff.chatStream.script);

// Time to first content of a stream, one request at a time, on a quiet gateway, for the gateway
// (auth, limits, routing, translating) against the JS proxy relaying the same stream.
async function ttfc(url, body, headers = {}) {
  const calm = await quietFor(`time to first content: ${url}`);
  return { ...(await firstContent(url, JSON.stringify(body), headers)), quiet: calm };
}
const streamBody = { ...oaiBody, model: "bench-model", stream: true };
const ttfcRows = [
  ["upstream direct", await ttfc(directLlm, streamBody)],
  ["JS proxy floor", await ttfc(new URL("/v1/chat/completions", floorUrl).href, streamBody)],
  ["gateway chat/completions", await ttfc(new URL("/v1/chat/completions", gw.url).href, { ...oaiBody, stream: true }, auth)],
  ["gateway messages (translated)", await ttfc(new URL("/v1/messages", gw.url).href, { ...oaiBody, stream: true }, auth)],
];

// The same ingress on a gateway with no queue consumers: verify + dedupe + enqueue alone, as on
// Cloudflare where consumers run elsewhere; here they would share the same two cores. Its
// reference enqueues without a consumer too.
if (only !== "llm") {
const ingress = await startGateway({ consumers: false });
const alone = await webhookRoutes(ingress, upstream, stdSecret);
await run("  same gateway: GET /healthz", new URL("/healthz", ingress.url).href, {}, "upstream direct");
await run("  webhook standard: HMAC+dedupe+enqueue", alone.signed.url, {}, "ref: HMAC + DO + queue send", alone.signed.script);
await run("  webhook telegram: token+dedupe+enqueue", alone.fresh.url, {}, "ref: HMAC + DO + queue send", alone.fresh.script);
await ingress.stop();
}

// Fresh isolates: the runtime started on the configuration already in KV, then its first /healthz
// and its first LLM answer, beside the JS proxy's first answers (bench/cold.mjs).
const coldQuiet = await quietFor("a fresh isolate");
const coldRuns = Number(process.env.COLD_RUNS ?? 3);
const cold = await coldStarts({ upstream, floorOptions, runs: coldRuns });
const coldRows = [...cold].map(([name, runs]) => [name, medians(runs), runs.compiled]);

const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
const pad = (s, n) => String(s).padEnd(n);
const num = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const short = (name) =>
  name.startsWith("ref: ") ? "ref" : name.includes("floor") ? "JS floor" : name.includes("direct") ? "upstream" : name.startsWith("llm") ? "plain route" : "healthz";
console.log(`\nwrk -t1 -c${CONNECTIONS} -d${DURATION}s, same run, same machine; "added" is 1e6/rps - 1e6/rps(reference), µs a request`);
const owed = quiet.count();
console.log(`each row measured on a quiet gateway: after its warm-up, every webhook event accepted so far delivered (${owed.delivered} deliveries of ${owed.expected} owed, in all:`);
console.log(`the duplicate row's first event is new, one more than owed; ${upstream.repeats.n} deliveries of an id delivered before) and no`);
console.log(`workerd CPU for ${(IDLE_MS / 1000).toFixed(1)} s; "quiet" is how long that took, "load" the machine's load average then (other processes)\n`);
console.log(pad("route", 40), pad("req/s", 9), pad("p50 ms", 8), pad("p99 ms", 8), pad("ratio", 16), pad("added µs", 9), pad("non-2xx", 8), pad("quiet", 7), "load");
for (const r of rows) {
  const base = r.baseline ? byName[r.baseline] : undefined;
  const ratio = base ? `${num(r.rps / base.rps, 2)} of ${short(r.baseline)}` : "";
  const added = base && !r.baseline.includes("direct") ? num(1e6 / r.rps - 1e6 / base.rps) : "";
  if (r.name.startsWith("  same gateway")) console.log("ingress-only gateway (no queue consumers):");
  console.log(pad(r.name, 40), pad(num(r.rps), 9), pad(num(r.p50, 2), 8), pad(num(r.p99, 2), 8), pad(ratio, 16), pad(added, 9), pad(r.non2xx, 8), pad(quietNote(r.quiet), 7), num(r.quiet.load, 1));
}
console.log("\nstreamed LLM answer, time to first content (sequential, 300 requests, each series on a quiet gateway)");
console.log(pad("", 40), pad("p50 ms", 8), pad("p99 ms", 8), pad("p50 over the JS proxy's", 24), pad("quiet", 7), "load");
const jsFirst = ttfcRows[1][1].p50;
for (const [name, t] of ttfcRows) console.log(pad(name, 40), pad(num(t.p50, 2), 8), pad(num(t.p99, 2), 8), pad(name.startsWith("gateway") ? `${t.p50 >= jsFirst ? "+" : ""}${num(t.p50 - jsFirst, 2)} ms` : "", 24), pad(quietNote(t.quiet), 7), num(t.quiet.load, 1));
console.log(`\na fresh isolate (the runtime started on configuration in KV), ms, median of ${coldRuns} starts; started after the runs were quiet (${quietNote(coldQuiet)}, load ${num(coldQuiet.load, 1)})`);
coldHeader();
for (const [name, c] of coldRows) coldRow(name, c, name === "gateway" ? `first answer +${num(c.llmMs - coldRows[0][1].llmMs, 1)} ms over the JS proxy's` : "");
for (const [name, , compiled] of coldRows) if (compiled) printCompiled(name, compiled);
const size = bundleSize();
console.log(`\nbundle (wasm + JS): ${num(size.raw / 1024)} KiB raw, ${num(size.gz / 1024, 1)} KiB gzipped`);
const parts = bundleParts(path.join(ROOT, "target/profile/index_bg.wasm"));
console.log(`wasm code ${num(parts.code / 1024)} KiB, data ${num(parts.data / 1024)} KiB; the biggest parts of the code:`);
for (const p of parts.parts) console.log(`  ${pad(num(p.bytes / 1024) + " KiB", 9)} ${num((100 * p.bytes) / parts.code, 1).padStart(5)}%  ${p.part}`);

mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
writeFileSync(path.join(ROOT, "bench/results/latest.json"), JSON.stringify({ at: new Date().toISOString(), rows, ttfc: ttfcRows, cold: coldRows, size, parts, direct }, null, 2));

await gw.stop();
await gwOff.stop();
await floor.dispose();
await loggingFloor.dispose();
await reference.dispose();
upstream.server.close();
if (notQuiet.length) {
  console.error(`\nNOT QUIET within BENCH_QUIET_SECONDS: these were measured beside other work, their figures are not worth much:\n  ${notQuiet.join("\n  ")}`);
  process.exitCode = 1;
}
