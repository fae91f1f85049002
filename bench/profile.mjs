// `make profile ROUTE=llm|webhook|channel|integration|floor`: runs one route family under load in
// workerd with the inspector on, records a CPU profile over the DevTools protocol
// (Profiler.start/stop) while wrk drives it, and prints where the time went: the top functions by
// self time, each marked wasm (named by the build in target/profile/, which keeps the names
// section), JS glue (the worker's own JavaScript) or runtime (workerd, V8, GC), and the totals
// of each. PROFILE_SECONDS (default 10) sets the load; PROFILE_TOP (default 30) the rows;
// PROFILE_PICK (e.g. "0" or "0,2") keeps only those routes of the family, in its order.
// ROUTE=floor profiles the JavaScript proxy floor (bench/js-proxy-floor.mjs, one log line a
// request as the gateway writes) on the LLM chat request, so that its cost a request can be set
// beside the gateway's, measured by the same instrument.
// Uses Node's WebSocket (behind `--experimental-websocket` before Node 22; the Makefile passes it).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";
import { startGateway } from "../tests/harness.mjs";
import { startUpstream } from "./upstream.mjs";
import { inspector } from "./inspector.mjs";
import { Quiet, quietNote } from "./quiet.mjs";
import { benchTenant, channelRoute, defaultOnly, integrationRoutes, llmBody, llmRoutes, orderedRoute, postScript, sqsRoute, webhookRoutes } from "./routes.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const ROUTE = process.env.ROUTE ?? "llm";
const SECONDS = process.env.PROFILE_SECONDS ?? "10";
const TOP = Number(process.env.PROFILE_TOP ?? 30);
const INSPECTOR = 9300 + (process.pid % 500);
const exec = promisify(execFile);

const families = {
  llm: async (gw, up, key) => Object.values(await llmRoutes(gw, up, key)),
  webhook: async (gw, up) => {
    const hooks = await webhookRoutes(gw, up);
    // PROFILE_PICK indexes: 0 new Telegram event, 1 duplicate, 2 new Standard Webhooks event,
    // 3 the same to an SQS destination, 4 the same to an ordered destination (50 keys).
    await defaultOnly(gw, hooks);
    return [hooks.fresh, hooks.duplicate, hooks.signed, await sqsRoute(gw, up, hooks), await orderedRoute(gw, up, hooks)];
  },
  channel: async (gw, up, key) => [await channelRoute(gw, up, key)],
  integration: async (gw, up, key) => Object.values(await integrationRoutes(gw, up, key)),
  floor: async (gw) => [
    { url: new URL("/v1/chat/completions", gw.url).href, headers: {}, script: postScript(JSON.stringify({ ...llmBody, model: "bench-model" })) },
  ],
};
if (!families[ROUTE]) throw new Error(`ROUTE must be one of ${Object.keys(families).join(", ")}`);

const upstream = await startUpstream();
const gw = ROUTE === "floor" ? await startFloor() : await startGateway({
  overrides: { scriptPath: path.join(ROOT, "target/profile/index.js"), inspectorPort: INSPECTOR },
});
const quiet = new Quiet(upstream);
if (ROUTE !== "floor") quiet.track(gw);
const key = ROUTE === "floor" ? undefined : await benchTenant(gw);
const all = await families[ROUTE](gw, upstream, key);
const pick = process.env.PROFILE_PICK?.split(",").map(Number);
const routes = pick ? pick.map((i) => all[i]).filter(Boolean) : all;
const wrk = (r, seconds) =>
  exec("wrk", ["-t1", "-c16", `-d${seconds}s`, ...Object.entries(r.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), "-s", r.script, r.url]);
// Warm up (compiled code, caches, objects), then record on a quiet gateway: the warm-up's events
// delivered, the runtime idle (bench/quiet.mjs).
let calm;
for (const r of routes) {
  quiet.deliveriesPerEvent(r.deliveries ?? 1);
  await wrk(r, 1);
  calm = await quiet.wait();
}
console.log(`${calm.ok ? "quiet" : "NOT QUIET"} after the warm-up: ${quietNote(calm)}, ${calm.delivered} deliveries of ${calm.expected} owed, load ${calm.load.toFixed(1)}`);

/** The JavaScript floor, logging as the gateway does, with the inspector on. */
async function startFloor() {
  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(ROOT, "bench/js-proxy-floor.mjs"),
    compatibilityDate: "2026-07-30",
    bindings: { UPSTREAM: upstream.url, LOG_LINE: "1" },
    handleStructuredLogs: () => {},
    inspectorPort: INSPECTOR,
  });
  return { url: await mf.ready, stop: () => mf.dispose() };
}

const devtools = await inspector(INSPECTOR);
await devtools.send("Profiler.enable");
await devtools.send("Profiler.setSamplingInterval", { interval: 100 });
await devtools.send("Profiler.start");
const seconds = Math.max(1, Math.round(Number(SECONDS) / routes.length));
const loads = [];
for (const r of routes) loads.push(await wrk(r, seconds));
const { profile } = await devtools.send("Profiler.stop");
devtools.close();
await gw.stop();
upstream.server.close();

// Self time per function, from the samples and the time between them.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  const dt = profile.timeDeltas[i + 1] ?? 0;
  self.set(node, (self.get(node) ?? 0) + dt);
}
const kind = ({ functionName: f, url }) => {
  if (url.startsWith("wasm://") || /^\$?wasm-function/.test(f)) return "wasm";
  // The worker's own modules have plain names; the runtime's are `node-internal:`, `cloudflare-internal:`...
  if (url && !/^[\w-]+:/.test(url)) return "JS glue";
  return "runtime";
};
const rows = new Map();
const totals = { wasm: 0, "JS glue": 0, runtime: 0 };
let idle = 0;
for (const [node, us] of self) {
  const f = node.callFrame;
  if (f.functionName === "(idle)") {
    idle += us;
    continue;
  }
  const k = kind(f);
  totals[k] += us;
  const name = `${f.functionName || "(anonymous)"}${k === "JS glue" ? ` ${path.basename(f.url)}:${f.lineNumber + 1}` : ""}`;
  const row = rows.get(name) ?? { name, kind: k, us: 0 };
  row.us += us;
  rows.set(name, row);
}
const busy = totals.wasm + totals["JS glue"] + totals.runtime;

// Who the time belongs to: each sample goes to the nearest wasm frame on its stack (itself, or the
// wasm function that called into JS and the runtime), by that frame's crate; runtime work with no
// wasm caller (I/O completions, the event loop) and the log line are counted on their own.
const parentOf = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
const ownerOf = (name) => {
  if (/^<?edge_gateway::/.test(name)) return "gateway";
  if (/(^|<)worker(\[[0-9a-f]+\])?::/.test(name)) return "workers-rs (conversions, streams, storage)";
  if (/^(js_sys::futures|wasm_bindgen|__wbindgen|__externref|js-to-wasm|wasm-to-js)|wasm_bindgen_futures/.test(name)) return "wasm-bindgen (futures, closures, externrefs)";
  return null; // web_sys, libraries: look further up
};
const owners = new Map();
for (const [node, us] of self) {
  if (node.callFrame.functionName === "(idle)") continue;
  let owner = null;
  for (let n = node; !owner && n; n = parentOf.get(n.id)) {
    const f = n.callFrame;
    if (/__wbg_log_/.test(f.functionName)) owner = "the log line (console.log, the runtime's log pipeline)";
    else if (kind(f) === "wasm") owner = ownerOf(f.functionName);
  }
  if (owner === "gateway") {
    owner = kind(node.callFrame) === "wasm" ? "the gateway's wasm (with serde, alloc)" : "runtime calls the gateway makes (fetch, storage, queue)";
  }
  owner ??= kind(node.callFrame) === "wasm" ? "libraries with no named caller" : "runtime with no wasm caller (I/O, event loop, GC)";
  owners.set(owner, (owners.get(owner) ?? 0) + us);
}
const requests = loads.reduce((n, l) => n + Number(/(\d+) requests in/.exec(l.stdout)?.[1] ?? 0), 0);
const pct = (us) => `${((100 * us) / busy).toFixed(1)}%`.padStart(6);
console.log(`\nCPU profile of ${ROUTE} (${routes.length} route(s), ${requests} requests under wrk -c16, ${SECONDS} s):`);
console.log(`busy ${(busy / 1000).toFixed(0)} ms (${(busy / Math.max(1, requests)).toFixed(0)} µs a request), idle ${(idle / 1000).toFixed(0)} ms`);
for (const [k, us] of Object.entries(totals)) console.log(`  ${k.padEnd(8)} ${pct(us)}`);
console.log(`\nby owner (a sample counts for the nearest wasm frame on its stack)`);
for (const [o, us] of [...owners].sort((a, b) => b[1] - a[1])) console.log(`  ${pct(us)}  ${o}`);
console.log(`\ntop ${TOP} by self time`);
for (const r of [...rows.values()].sort((a, b) => b.us - a.us).slice(0, TOP)) {
  console.log(`${pct(r.us)}  ${r.kind.padEnd(8)} ${r.name.slice(0, 110)}`);
}
mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
writeFileSync(path.join(ROOT, `bench/results/profile-${ROUTE}.cpuprofile`), JSON.stringify(profile));
console.log(`\nthe whole profile (open in Chrome DevTools): bench/results/profile-${ROUTE}.cpuprofile`);
