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

const ROOT = path.resolve(import.meta.dirname, "..");
const DURATION = process.env.BENCH_SECONDS ?? "5";
const CONNECTIONS = process.env.BENCH_CONNECTIONS ?? "16";

// Asynchronous on purpose: the upstream server lives in this process and must keep answering.
const exec = promisify(execFile);
const headerArgs = (headers) => Object.entries(headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);

async function wrk(url, headers = {}, seconds = DURATION, connections = CONNECTIONS) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", ...headerArgs(headers), url];
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
const run = async (name, url, headers, baseline) => {
  await wrk(url, headers, 1, 4); // warm up isolates and caches
  const r = await wrk(url, headers);
  rows.push({ name, ...r, baseline });
  return r;
};

const direct = await run("upstream direct", `${upstream.url}/json`);
await run("JS proxy floor -> upstream", new URL("/json", floorUrl).href, {}, "upstream direct");
await run("gateway GET /healthz", new URL("/healthz", gw.url).href, {}, "upstream direct");
await run("gateway GET /v1/me (auth)", new URL("/v1/me", gw.url).href, { authorization: `Bearer ${demoKey}` }, "upstream direct");

const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
const pad = (s, n) => String(s).padEnd(n);
const num = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "-");
console.log(`\nwrk -t1 -c${CONNECTIONS} -d${DURATION}s, same run, same machine\n`);
console.log(pad("route", 34), pad("req/s", 10), pad("p50 ms", 9), pad("p99 ms", 9), pad("vs upstream", 12), "non-2xx");
for (const r of rows) {
  const base = r.baseline ? byName[r.baseline] : undefined;
  const ratio = base ? `${num((100 * r.rps) / base.rps)}%` : "";
  console.log(pad(r.name, 34), pad(num(r.rps), 10), pad(num(r.p50, 2), 9), pad(num(r.p99, 2), 9), pad(ratio, 12), r.non2xx);
}
const size = bundleSize();
const budget = 250 * 1024;
console.log(`\nbundle (wasm + JS): ${num(size.raw / 1024)} KiB raw, ${num(size.gz / 1024, 1)} KiB gzipped; budget 250 KiB gzipped: ${size.gz <= budget ? "within" : "OVER"}`);

mkdirSync(path.join(ROOT, "bench/results"), { recursive: true });
writeFileSync(path.join(ROOT, "bench/results/latest.json"), JSON.stringify({ at: new Date().toISOString(), rows, size, direct }, null, 2));

await gw.stop();
await floor.dispose();
upstream.server.close();
