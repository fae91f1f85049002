// `make soak` (not part of `make test`): SOAK_MINUTES (default 10) of mixed traffic at SOAK_LOAD
// (default 0.8) of the capacity measured first on the same mix, against the bench upstream with
// SOAK_FAULT_RATE (default 0.02) of its answers a 503: webhooks of every source kind (delivered to
// a destination), WhatsApp channel sends, integration calls, LLM calls streamed and
// not, and widget chat (500 visitors, 20 messages a conversation). Loopback only, bounded in count
// and time.
//
// Each minute it reports requests by route and status, p50/p99 latency, the gateway isolate's JS
// heap (over the DevTools protocol), its wasm memory and config cache sizes (`GET
// /v1/admin/runtime`), and the resident memory of the workerd process (the isolate, Durable Object
// storage and the runtime's own). At the end, after the queues drain, events received = delivered
// + dead-lettered. It exits non-zero if an event was lost, a request got a 5xx the faults do not
// explain, p50 drifted up by half, or after warm-up the JS heap grew past SOAK_HEAP_GROWTH_MIB
// (default 32), the wasm memory past SOAK_WASM_GROWTH_MIB (default 32) or the process past
// SOAK_RSS_GROWTH_MIB (default 256).
import { request, Agent } from "undici";
import { readFileSync, readdirSync } from "node:fs";
import { startGateway } from "../tests/harness.mjs";
import { sign } from "../tests/signers.mjs";
import { KINDS, eventId, sample, sourceDoc, sourceSecrets } from "../tests/samples.mjs";
import { startUpstream } from "./upstream.mjs";
import { inspector } from "./inspector.mjs";
import { benchTenant, channelRoute, integrationRoutes, llmBody, llmRoutes, webhookRoutes } from "./routes.mjs";

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const LOAD = Number(process.env.SOAK_LOAD ?? 0.8);
const FAULT_RATE = Number(process.env.SOAK_FAULT_RATE ?? 0.02);
const HEAP_GROWTH_MIB = Number(process.env.SOAK_HEAP_GROWTH_MIB ?? 32);
const WASM_GROWTH_MIB = Number(process.env.SOAK_WASM_GROWTH_MIB ?? 32);
const RSS_GROWTH_MIB = Number(process.env.SOAK_RSS_GROWTH_MIB ?? 256);
const MAX_IN_FLIGHT = 256;
const ORIGIN = "https://shop.example.com";
const INSPECTOR = 9300 + (process.pid % 500);

const upstream = await startUpstream({ faultRate: FAULT_RATE });
// Log lines are dropped (hundreds of thousands), and the load goes through undici directly, past
// the harness's copy of every response.
// Miniflare runs one consumer batch of a queue at a time, where Cloudflare runs many at once:
// batches of 100 let local delivery keep up with the ingress a soak drives.
const consumers = JSON.parse(readFileSync(new URL("../miniflare.config", import.meta.url), "utf8")).queueConsumers;
for (const q of ["events", "deliveries"]) consumers[q] = { ...consumers[q], maxBatchSize: 100 };
const gw = await startGateway({ seed: false, overrides: { inspectorPort: INSPECTOR, handleStructuredLogs: () => {}, queueConsumers: consumers } });
// Idle sockets are let go before workerd closes them, so a request never races a closing socket.
const agent = new Agent({ connections: MAX_IN_FLIGHT, keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 });
const key = await benchTenant(gw);
const hooks = await webhookRoutes(gw, upstream);
const channel = await channelRoute(gw, upstream, key);
const integration = await integrationRoutes(gw, upstream, key);
const llm = await llmRoutes(gw, upstream, key);
// The bench tenant again, with its widget: the same destination, an allowed origin, an assistant.
await gw.admin("PUT", "bench", {
  name: "Bench",
  destination: { url: `${upstream.url}/hooks`, secret: hooks.whsec },
  allowed_origins: [ORIGIN],
  assistant: { model: "fast", system_prompt: "Be brief." },
  limits: { widget_rpm_per_visitor: 1000000 },
});
const pk = (await gw.admin("POST", "bench/widget-keys")).body.key;
// Breakers keep their defaults: they judge a failure rate (half of at least 10 calls in a
// minute), which the injected 2% never reaches at any volume.

// A source of every kind, named after it, each event a fresh correctly signed sample.
const secrets = sourceSecrets();
for (const kind of KINDS) {
  const put = await gw.admin("PUT", `bench/sources/${kind}`, sourceDoc("bench", kind, secrets[kind]));
  if (put.status !== 201) throw new Error(`source ${kind}: ${put.status} ${put.text}`);
}
const webhook = (kind) => ({ name: `webhook.${kind}`, weight: 4, make: () => {
  const s = sample("bench", secrets, kind);
  const type = kind === "twilio" ? "application/x-www-form-urlencoded" : "application/json";
  return [new URL(`/v1/webhooks/bench/${kind}`, gw.url).href, { "content-type": type, ...s.headers }, s.body, eventId("bench", kind, s.pid)];
} });

let sequence = 0;
const VISITORS = 500;
/** visitor -> {id: its conversation, turns: messages in it} */
const conversations = {};
/** Dead letters the tenant holds (the admin API lists them). */
const deadLettered = async () => (await gw.admin("GET", "bench/dead-letters")).body?.data?.length ?? 0;
/** The mix, by weight: each kind builds a fresh request (new event ids where it matters). */
const kinds = [
  ...KINDS.map(webhook),
  { name: "channel.send", weight: 15, make: () => [channel.url, { ...channel.headers, "content-type": "application/json" }, JSON.stringify({ conversation_id: "16505551234", type: "text", text: "Your order shipped" })] },
  { name: "integration", weight: 15, make: () => [integration.uncached.url, { ...integration.uncached.headers, "content-type": "application/json" }, '{"input": {"id": "1"}}'] },
  { name: "llm.chat", weight: 15, make: () => [llm.chat.url, { ...llm.chat.headers, "content-type": "application/json" }, JSON.stringify(llmBody)] },
  { name: "llm.stream", weight: 10, make: () => [llm.chatStream.url, { ...llm.chatStream.headers, "content-type": "application/json" }, JSON.stringify({ ...llmBody, stream: true })] },
  { name: "widget.chat", weight: 10, make: () => {
    // 500 visitors, each going on with its conversation for 20 messages, then starting another.
    const visitor = `v${sequence++ % VISITORS}`;
    const c = (conversations[visitor] ??= { id: undefined, turns: 0 });
    if (c.turns++ >= 20) Object.assign(c, { id: undefined, turns: 1 });
    const body = JSON.stringify({ message: "hi", ...(c.id ? { conversation_id: c.id } : {}) });
    const remember = (res) => (c.id ??= res.headers["x-conversation-id"]);
    return [new URL(`/v1/widget/chat?key=${pk}`, gw.url).href, { "content-type": "application/json", origin: ORIGIN, "x-visitor-id": visitor }, body, undefined, remember];
  } },
];
const totalWeight = kinds.reduce((n, k) => n + k.weight, 0);
const pickKind = (() => {
  let n = 0;
  // Deterministic interleaving in proportion to the weights.
  const wheel = kinds.flatMap((k) => Array(k.weight).fill(k));
  return () => wheel[n++ % totalWeight];
})();

/** The current minute's figures. */
let minute = fresh();
function fresh() {
  return { byRoute: {}, latencies: {}, skipped: 0, errors: {} };
}
/** The gateway's ids of the events it acknowledged during the soak. */
let received = new Set();
let inFlight = 0;

async function one() {
  const kind = pickKind();
  const [url, headers, body, event, onResponse] = kind.make();
  const started = performance.now();
  let status = 0;
  try {
    const res = await request(url, { method: "POST", headers, body, dispatcher: agent });
    status = res.statusCode;
    await res.body.text();
    if (status === 200) onResponse?.(res);
  } catch (e) {
    status = 0;
    const code = e.code ?? e.name ?? "error";
    minute.errors[code] = (minute.errors[code] ?? 0) + 1;
  }
  const ms = performance.now() - started;
  const r = (minute.byRoute[kind.name] ??= {});
  r[status] = (r[status] ?? 0) + 1;
  (minute.latencies[kind.name] ??= []).push(ms);
  if (event && status === 200) received.add(event);
  return status;
}

/** Sends at `rps` for `ms`, open loop (a request is skipped, and counted, past MAX_IN_FLIGHT). */
async function drive(rps, ms, onMinute) {
  const end = Date.now() + ms;
  let owed = 0;
  let last = Date.now();
  let minuteEnds = Date.now() + 60_000;
  const pending = new Set();
  while (Date.now() < end) {
    const now = Date.now();
    owed += ((now - last) / 1000) * rps;
    last = now;
    while (owed >= 1) {
      owed -= 1;
      if (inFlight >= MAX_IN_FLIGHT) {
        minute.skipped++;
        continue;
      }
      inFlight++;
      const p = one().finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    if (onMinute && now >= minuteEnds) {
      minuteEnds += 60_000;
      await onMinute();
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(pending);
  if (onMinute) await onMinute();
}

/**
 * Closed loop on the same mix: what the gateway sustains here, requests per second. Sustains
 * includes delivering: the time counted runs until the events acknowledged meanwhile reach the
 * destination (all but those the faults sent back for a retry with backoff), since ingress alone
 * outruns local delivery and a soak at that rate measures a growing queue.
 */
async function capacity(seconds) {
  received = new Set();
  let done = 0;
  const started = Date.now();
  const end = started + seconds * 1000;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (Date.now() < end) {
      await one();
      done++;
    }
  }));
  const retried = Math.ceil(received.size * FAULT_RATE * 3) + 5;
  while (received.size - delivered() > retried && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 100));
  const took = (Date.now() - started) / 1000;
  console.log(`  ${done} requests in ${seconds} s, their ${received.size} events delivered by ${took.toFixed(1)} s`);
  return done / Math.max(seconds, took);
}
/** How many of the acknowledged events the destination has. */
const delivered = () => [...received].filter((id) => upstream.hooks.has(id)).length;

const MiB = 1024 * 1024;

/** Resident memory of this process's workerd children, MiB (Linux /proc). */
function workerdRss() {
  let kib = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      if (!/^Name:\s+workerd/m.test(status) || !new RegExp(`^PPid:\\s+${process.pid}$`, "m").test(status)) continue;
      kib += Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return kib / 1024;
}
const pct = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

console.log(`soak: measuring capacity on the mix (10 s and its deliveries), then ${MINUTES} min at ${LOAD * 100}% of it, upstream faults ${FAULT_RATE * 100}%`);
await capacity(3); // warm up
const cap = await capacity(10);
minute = fresh();
received = new Set();
const lettersBefore = await deadLettered();
const rps = Math.max(1, Math.round(cap * LOAD));
console.log(`capacity ${cap.toFixed(0)} req/s; soaking at ${rps} req/s`);

const devtools = await inspector(INSPECTOR);
const memory = [];
const report = [];
async function record() {
  const h = await devtools.send("Runtime.getHeapUsage");
  const runtime = (await gw.request("GET", "/v1/admin/runtime", { admin: true })).body;
  const m = { heap_mib: h.usedSize / MiB, wasm_mib: runtime.wasm_memory_bytes / MiB, caches: runtime.config_cache, rss_mib: workerdRss() };
  memory.push(m);
  const routes = Object.keys(minute.byRoute).sort();
  const row = {
    minute: memory.length,
    requests: routes.reduce((n, r) => n + Object.values(minute.byRoute[r]).reduce((a, b) => a + b, 0), 0),
    skipped: minute.skipped,
    by_route: Object.fromEntries(routes.map((r) => [r, { statuses: minute.byRoute[r], p50_ms: +pct(minute.latencies[r], 50).toFixed(1), p99_ms: +pct(minute.latencies[r], 99).toFixed(1) }])),
    all_p50_ms: +pct(Object.values(minute.latencies).flat(), 50).toFixed(1),
    all_p99_ms: +pct(Object.values(minute.latencies).flat(), 99).toFixed(1),
    heap_mib: +m.heap_mib.toFixed(1),
    wasm_mib: +m.wasm_mib.toFixed(1),
    config_cache: m.caches,
    workerd_rss_mib: +m.rss_mib.toFixed(1),
    // Events acknowledged but not yet at the destination: flat when delivery keeps up.
    backlog: received.size - delivered(),
    client_errors: minute.errors,
  };
  report.push(row);
  console.log(`min ${row.minute}: ${row.requests} requests (${row.skipped} skipped), p50 ${row.all_p50_ms} ms, p99 ${row.all_p99_ms} ms, JS heap ${row.heap_mib} MiB, wasm ${row.wasm_mib} MiB, workerd RSS ${row.workerd_rss_mib} MiB, backlog ${row.backlog}${Object.keys(row.client_errors).length ? `, client errors ${JSON.stringify(row.client_errors)}` : ""}`);
  for (const [r, v] of Object.entries(row.by_route)) console.log(`    ${r.padEnd(18)} ${JSON.stringify(v.statuses)} p50 ${v.p50_ms} p99 ${v.p99_ms}`);
  minute = fresh();
}
await drive(rps, MINUTES * 60_000, record);

// Let the queues drain: every received event is delivered or dead-lettered. Waits while they
// make progress (at most 10 minutes); a minute without progress means the rest is lost.
const drainEnd = Date.now() + 600_000;
let letters = (await deadLettered()) - lettersBefore;
let settled = delivered() + letters;
let progressAt = Date.now();
while (Date.now() < drainEnd && settled < received.size && Date.now() - progressAt < 60_000) {
  await new Promise((r) => setTimeout(r, 2000));
  letters = (await deadLettered()) - lettersBefore;
  const now = delivered() + letters;
  if (now > settled) progressAt = Date.now();
  settled = now;
}
const drainSeconds = Math.round((Date.now() - (drainEnd - 600_000)) / 1000);
devtools.close();
await gw.mf.dispose();
await agent.close();
upstream.server.close();

const problems = [];
const events = { received: received.size, delivered: delivered(), dead_lettered: letters };
if (events.delivered + letters !== events.received) problems.push(`events: ${JSON.stringify(events)}`);
const unexplained = report.flatMap((m) => Object.entries(m.by_route).flatMap(([r, v]) => Object.entries(v.statuses).filter(([s]) => s === "0" || (s >= 500 && !["502", "503"].includes(s))).map(([s, n]) => `${r} ${s} x${n} in minute ${m.minute}`)));
if (unexplained.length) problems.push(`unexplained failures: ${unexplained.join("; ")}`);
// Drift: the last three minutes' p50 against minutes 2 to 4 (noise here is about 30%).
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
if (report.length >= 6) {
  const early = median(report.slice(1, 4).map((m) => m.all_p50_ms));
  const late = median(report.slice(-3).map((m) => m.all_p50_ms));
  if (late > early * 1.5) problems.push(`p50 drifted from ${early} ms (minutes 2-4) to ${late} ms (last three)`);
}
// Warm-up: the first minute (compiled code, caches filled, objects created).
const warm = memory[Math.min(1, memory.length - 1)];
const lastMem = memory.at(-1);
const growth = { heap_mib: +(lastMem.heap_mib - warm.heap_mib).toFixed(1), wasm_mib: +(lastMem.wasm_mib - warm.wasm_mib).toFixed(1), workerd_rss_mib: +(lastMem.rss_mib - warm.rss_mib).toFixed(1) };
if (growth.heap_mib > HEAP_GROWTH_MIB) problems.push(`JS heap grew ${growth.heap_mib} MiB after warm-up (bound ${HEAP_GROWTH_MIB})`);
if (growth.wasm_mib > WASM_GROWTH_MIB) problems.push(`wasm memory grew ${growth.wasm_mib} MiB after warm-up (bound ${WASM_GROWTH_MIB})`);
if (growth.workerd_rss_mib > RSS_GROWTH_MIB) problems.push(`workerd grew ${growth.workerd_rss_mib} MiB after warm-up (bound ${RSS_GROWTH_MIB})`);
console.log(JSON.stringify({ capacity_rps: Math.round(cap), soak_rps: rps, minutes: MINUTES, events, drain_seconds: drainSeconds, memory_growth_after_warm_up: growth, problems }, null, 1));
process.exit(problems.length ? 1 : 0);
