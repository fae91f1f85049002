// A fresh isolate's first answers (`make bench`'s last table; `make bench-cold` alone): a runtime
// started on the configuration already in KV, its start, its first /healthz and its first LLM
// answer, and the CPU workerd spent on that answer, beside the JS proxy's. Each figure is the
// median of COLD_RUNS starts (3 in `make bench`, 5 alone), the builds taking turns so that a slow
// moment of a shared machine falls on each alike; the CPU time is the steadier figure there.
// `node bench/cold.mjs DIR...` compares builds (each DIR holds an index.js: build/, a copy of it
// made before a change). COLD_COMPILED=1 also lists, by crate, the wasm that V8 compiled for the
// first LLM answer (it compiles a function when first called): what that answer pays for most.
import { Miniflare } from "miniflare";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startGateway } from "../tests/harness.mjs";
import { startUpstream } from "./upstream.mjs";
import { bundleParts } from "./bundle.mjs";
import { benchTenant, llmBody, llmRoutes } from "./routes.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");

async function timed(f) {
  const t = process.hrtime.bigint();
  const out = await f();
  return [Number(process.hrtime.bigint() - t) / 1e6, out];
}

/** The workerd this process started last (Linux), whose CPU time `cpuMs` reads. */
function newestRuntime() {
  let best;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone, or not Linux
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [parent, started] = [Number(fields[1]), Number(fields[19])];
    if (comm === "workerd" && parent === process.pid && !(best?.started > started)) best = { pid, started };
  }
  return best?.pid;
}

/** CPU time of every thread of process `pid` so far, ms (NaN where /proc cannot tell). */
function cpuMs(pid) {
  if (!pid) return NaN;
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return ns / 1e6;
}

/**
 * Starts a runtime with `start` (returning its URL), then times its first GET `healthPath` and its
 * first LLM answer (`llm`: path and model), with the CPU workerd spent on that answer, all of its
 * threads: the worker, and the local stand-ins for KV and Durable Objects it calls.
 */
async function firstAnswers(start, healthPath, llm, headers) {
  const [startMs, url] = await timed(start);
  const runtime = newestRuntime();
  const get = (p) => fetch(new URL(p, url)).then((r) => r.arrayBuffer());
  const post = (p) => fetch(new URL(p, url), { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ ...llmBody, model: llm.model }) }).then(async (r) => {
    if (r.status !== 200) throw new Error(`cold LLM answer ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  });
  const [healthMs] = await timed(() => get(healthPath));
  const before = cpuMs(runtime);
  const [llmMs] = await timed(() => post(llm.path));
  return { startMs, healthMs, llmMs, llmCpuMs: cpuMs(runtime) - before, pid: runtime };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Each figure of `runs` (firstAnswers' results), its median. */
export const medians = (runs) => Object.fromEntries(["startMs", "healthMs", "llmMs", "llmCpuMs"].map((k) => [k, median(runs.map((r) => r[k]))]));

/**
 * `runs` fresh starts of the JS proxy (`floorOptions`) and of each of `builds` ([name, entry
 * script, or undefined for build/]) on one persisted configuration, taking turns; `each(name, r)`
 * sees every result. Returns a Map from "JS proxy floor" and each build's name to its results.
 */
export async function coldStarts({ upstream, floorOptions, builds = [["gateway", undefined]], runs = 3, each = () => {} }) {
  const dir = mkdtempSync(path.join(tmpdir(), "bench-cold-"));
  const gw = await startGateway({ persist: dir });
  const key = await benchTenant(gw);
  await llmRoutes(gw, upstream, key);
  await gw.mf.dispose();
  const results = new Map([["JS proxy floor", []], ...builds.map(([name]) => [name, []])]);
  const measure = async (name, options, health, llm, headers) => {
    let mf;
    const r = await firstAnswers(() => (mf = new Miniflare(options)).ready, health, llm, headers);
    await mf.dispose();
    results.get(name).push(r);
    each(name, r);
  };
  try {
    for (let i = 0; i < runs; i++) {
      await measure("JS proxy floor", floorOptions, "/json", { path: "/v1/chat/completions", model: "bench-model" });
      for (const [name, script] of i % 2 ? [...builds].reverse() : builds) {
        const options = script ? { ...gw.options, scriptPath: script } : gw.options;
        await measure(name, options, "/healthz", { path: "/v1/chat/completions", model: "fast" }, { authorization: `Bearer ${key}` });
      }
    }
    if (process.env.COLD_COMPILED) {
      for (const [name, script] of builds) results.get(name).compiled = await compiled(gw.options, script, key);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

/**
 * The wasm functions V8 compiled for the first LLM answer of a fresh start of `script` (build/ if
 * undefined), from the code map V8 writes with --perf-basic-prof (/tmp/perf-PID.map, a line per
 * code object; a wasm function's ends `-INDEX-liftoff`), by part. Named by target/profile for
 * build/ (the same code, names kept), else by the wasm beside `script`, which must keep them.
 */
async function compiled(options, script, key) {
  const flags = process.env.MINIFLARE_WORKERD_V8_FLAGS;
  // The code map only: V8 would also write a log per isolate into the working directory.
  process.env.MINIFLARE_WORKERD_V8_FLAGS = "--perf-basic-prof --logfile=/dev/null --no-logfile-per-isolate";
  const mf = new Miniflare(script ? { ...options, scriptPath: script } : options);
  let map;
  try {
    const url = await mf.ready;
    map = `/tmp/perf-${newestRuntime()}.map`;
    await fetch(new URL("/healthz", url)).then((r) => r.arrayBuffer());
    const before = readFileSync(map, "utf8").split("\n").length - 1;
    const r = await fetch(new URL("/v1/chat/completions", url), { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify(llmBody) });
    await r.arrayBuffer();
    const only = new Set();
    for (const line of readFileSync(map, "utf8").split("\n").slice(before)) {
      const m = /-(\d+)-liftoff$/.exec(line);
      if (m) only.add(Number(m[1]));
    }
    const names = script ? path.join(path.dirname(script), "index_bg.wasm") : path.join(ROOT, "target/profile/index_bg.wasm");
    return { functions: only.size, ...bundleParts(names, 15, only) };
  } finally {
    await mf.dispose();
    if (map) rmSync(map, { force: true });
    if (flags === undefined) delete process.env.MINIFLARE_WORKERD_V8_FLAGS;
    else process.env.MINIFLARE_WORKERD_V8_FLAGS = flags;
  }
}

const pad = (s, n) => String(s).padEnd(n);
/** Prints a row of the fresh-isolate table. */
export function coldRow(name, c, note = "") {
  console.log(pad(name, 40), pad(c.startMs.toFixed(0), 8), pad(c.healthMs.toFixed(1), 10), pad(c.llmMs.toFixed(1), 18), pad(c.llmCpuMs.toFixed(1), 20), note);
}
export const coldHeader = () => console.log(pad("", 40), pad("start", 8), pad("/healthz", 10), pad("first LLM answer", 18), pad("its CPU (workerd)", 20));
/** Prints what the first LLM answer compiled (COLD_COMPILED=1). */
export function printCompiled(name, c) {
  console.log(`\n${name}: the first LLM answer compiled ${c.functions} wasm functions, ${(c.code / 1024).toFixed(0)} KiB; by part:`);
  for (const p of c.parts) console.log(`  ${pad((p.bytes / 1024).toFixed(1) + " KiB", 10)} ${((100 * p.bytes) / c.code).toFixed(1).padStart(5)}%  ${p.part}`);
}

/** The Miniflare options of the ten-line JavaScript proxy every LLM row is set beside. */
export function jsFloorOptions(upstreamUrl) {
  return {
    modules: true,
    scriptPath: path.join(ROOT, "bench/js-proxy-floor.mjs"),
    compatibilityDate: "2026-07-30",
    bindings: { UPSTREAM: upstreamUrl },
  };
}

if (process.argv[1] === import.meta.filename) {
  const runs = Number(process.env.COLD_RUNS ?? 5);
  const dirs = process.argv.slice(2);
  const builds = dirs.length ? dirs.map((d) => [d, path.resolve(d, "index.js")]) : [["gateway (build/)", undefined]];
  const upstream = await startUpstream();
  const floorOptions = jsFloorOptions(upstream.url);
  console.log("a fresh isolate (the runtime started on configuration in KV), ms, each start:");
  coldHeader();
  const results = await coldStarts({ upstream, floorOptions, builds, runs, each: (name, r) => coldRow(name, r) });
  console.log(`\nmedians of ${runs} starts`);
  coldHeader();
  const floor = medians(results.get("JS proxy floor"));
  for (const [name, rs] of results) {
    const m = medians(rs);
    coldRow(name, m, name === "JS proxy floor" ? "" : `first answer +${(m.llmMs - floor.llmMs).toFixed(1)} ms over the JS proxy's`);
  }
  for (const [name, rs] of results) if (rs.compiled) printCompiled(name, rs.compiled);
  upstream.server.close();
}
