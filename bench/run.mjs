// `make bench`: each route of the gateway next to its upstream called directly and the ten-line
// JavaScript proxy floor, in one run, with wrk. Prints req/s, p50/p99 latency and the ratios, and
// the bundle size against its budget. Figures depend on the machine; compare ratios, not absolutes.
import { Miniflare } from "miniflare";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync, readdirSync, mkdirSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { startGateway } from "../tests/harness.mjs";
import { startUpstream } from "./upstream.mjs";
import { benchTenant, channelRoute, integrationRoutes, llmBody, llmRoutes, postScript, webhookRoutes } from "./routes.mjs";
import http from "node:http";

const ROOT = path.resolve(import.meta.dirname, "..");
const DURATION = process.env.BENCH_SECONDS ?? "5";
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? "16";

// Asynchronous on purpose: the upstream server lives in this process and must keep answering.
const exec = promisify(execFile);
const headerArgs = (headers) => Object.entries(headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);

async function wrk(url, headers = {}, seconds = DURATION, connections = CONNECTIONS, script) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", ...headerArgs(headers), ...(script ? ["-s", script] : []), url];
  const { stdout: text } = await exec("wrk", args);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const ms = (label) => {
    const m = new RegExp(`${label}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    if (!m) return NaN;
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]];
  };
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  return { rps, p50: ms("50"), p99: ms("99"), non2xx };
}

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
const floor = new Miniflare({
  modules: true,
  scriptPath: path.join(ROOT, "bench/js-proxy-floor.mjs"),
  compatibilityDate: "2026-07-30",
  bindings: { UPSTREAM: upstream.url },
});
const floorUrl = await floor.ready;
const gw = await startGateway();
const demoKey = "sk_dev_demo_local_only_0000000000";

const rows = [];
const run = async (name, url, headers, baseline, script) => {
  await wrk(url, headers, 1, 4, script); // warm up isolates and caches
  const r = await wrk(url, headers, DURATION, CONNECTIONS, script);
  rows.push({ name, ...r, baseline });
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
const hooks = await webhookRoutes(gw, upstream);
const route = (name, r, baseline) => run(name, r.url, r.headers, baseline, r.script);
await route("webhook new event, delivered (telegram)", hooks.fresh, "gateway GET /healthz");
// The same signed event again and again: verify (HMAC) + dedupe, answered as a duplicate.
await route("webhook duplicate (standard, HMAC)", hooks.duplicate, "gateway GET /healthz");

// Channel send: the same upstream playing the WhatsApp Cloud API, next to calling it directly
// with the same request.
const send = await channelRoute(gw, upstream, benchKey);
const waBody = JSON.stringify({ messaging_product: "whatsapp", recipient_type: "individual", to: "16505551234", type: "text", text: { preview_url: false, body: "Your order shipped" } });
await run("provider direct (WhatsApp send)", `${upstream.url}/v21.0/1065/messages`, { authorization: "Bearer bench-token" }, undefined, postScript(waBody));
await route("channel send (whatsapp)", send, "JS proxy floor -> upstream");

// Integration execute: the upstream as the provider, uncached and cached, next to calling it directly.
const exec = await integrationRoutes(gw, upstream, benchKey);
await run("provider direct (GET /items/1)", `${upstream.url}/items/1`, {});
await route("integration execute, uncached", exec.uncached, "JS proxy floor -> upstream");
await route("integration execute, cached", exec.cached, "JS proxy floor -> upstream");
}

// LLM proxy: an OpenAI-style upstream, next to the upstream called directly and the JS floor
// proxying it.
const llm = await llmRoutes(gw, upstream, benchKey);
const oaiBody = llmBody;
const directLlm = `${upstream.url}/v1/chat/completions`;
const directScript = (body) => postScript(JSON.stringify({ ...body, model: "bench-model" }));
await run("LLM upstream direct", directLlm, {}, undefined, directScript(oaiBody));
await run("JS proxy floor -> LLM upstream", new URL("/v1/chat/completions", floorUrl).href, {}, "LLM upstream direct", directScript(oaiBody));
await run("llm chat/completions", llm.chat.url, auth, "JS proxy floor -> LLM upstream", llm.chat.script);
await run("llm messages (translated)", llm.messages.url, auth, "JS proxy floor -> LLM upstream", llm.messages.script);
await run("LLM upstream direct, stream", directLlm, {}, undefined, directScript({ ...oaiBody, stream: true }));
await run("llm chat/completions, stream", llm.chatStream.url, auth, "LLM upstream direct, stream", llm.chatStream.script);
await run("llm messages, stream (translated)", llm.messagesStream.url, auth, "LLM upstream direct, stream", llm.messagesStream.script);

// Time to first byte of a stream, one request at a time: the gateway (auth, limits, routing,
// holding for the first content, translating) against the upstream's own.
async function ttfb(url, body, headers = {}, n = 300) {
  const times = [];
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < n + 20; i++) {
    const t = await new Promise((resolve, reject) => {
      const start = process.hrtime.bigint();
      const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", ...headers } }, (res) => {
        res.once("data", () => resolve(Number(process.hrtime.bigint() - start) / 1e6));
        res.resume();
      });
      req.on("error", reject);
      req.end(JSON.stringify(body));
    });
    if (i >= 20) times.push(t); // the first ones warm up
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n / 2)], p99: times[Math.floor(n * 0.99)] };
}
const ttfbRows = [
  ["upstream direct", await ttfb(directLlm, { ...oaiBody, model: "bench-model", stream: true })],
  ["gateway chat/completions", await ttfb(new URL("/v1/chat/completions", gw.url).href, { ...oaiBody, stream: true }, auth)],
  ["gateway messages (translated)", await ttfb(new URL("/v1/messages", gw.url).href, { ...oaiBody, stream: true }, auth)],
];

// The same ingress on a gateway with no queue consumers: verify + dedupe + enqueue alone, as on
// Cloudflare where consumers run elsewhere; here they would share the same two cores.
if (only !== "llm") {
const ingress = await startGateway({ consumers: false });
const alone = await webhookRoutes(ingress, upstream);
await run("  same gateway: GET /healthz", new URL("/healthz", ingress.url).href, {}, "upstream direct");
await run("  webhook verify+dedupe+enqueue", alone.fresh.url, {}, "  same gateway: GET /healthz", alone.fresh.script);
await ingress.stop();
}

const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
const pad = (s, n) => String(s).padEnd(n);
const num = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
console.log(`\nwrk -t1 -c${CONNECTIONS} -d${DURATION}s, same run, same machine\n`);
console.log(pad("route", 36), pad("req/s", 10), pad("p50 ms", 9), pad("p99 ms", 9), pad("ratio", 18), "non-2xx");
for (const r of rows) {
  const base = r.baseline ? byName[r.baseline] : undefined;
  const label = r.baseline?.includes("direct") ? "upstream" : r.baseline?.includes("floor") ? "JS floor" : "healthz";
  const ratio = base ? `${num((100 * r.rps) / base.rps)}% of ${label}` : "";
  if (r.name.startsWith("  webhook")) console.log("ingress-only gateway (no queue consumers):");
  console.log(pad(r.name, 36), pad(num(r.rps), 10), pad(num(r.p50, 2), 9), pad(num(r.p99, 2), 9), pad(ratio, 18), r.non2xx);
}
console.log("\nstreamed LLM answer, time to first byte (sequential, 300 requests)");
console.log(pad("", 36), pad("p50 ms", 9), pad("p99 ms", 9), "p50 over the upstream's");
for (const [name, t] of ttfbRows) console.log(pad(name, 36), pad(num(t.p50, 2), 9), pad(num(t.p99, 2), 9), name === "upstream direct" ? "" : `+${num(t.p50 - ttfbRows[0][1].p50, 2)} ms`);
const size = bundleSize();
const budget = 250 * 1024;
console.log(`\nbundle (wasm + JS): ${num(size.raw / 1024)} KiB raw, ${num(size.gz / 1024, 1)} KiB gzipped; budget 250 KiB gzipped: ${size.gz <= budget ? "within" : "OVER"}`);

mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
writeFileSync(path.join(ROOT, "bench/results/latest.json"), JSON.stringify({ at: new Date().toISOString(), rows, ttfb: ttfbRows, size, direct }, null, 2));

await gw.stop();
await floor.dispose();
upstream.server.close();
