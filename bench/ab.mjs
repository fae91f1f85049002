// `node bench/ab.mjs DIR_A DIR_B` (`make bench-ab BEFORE=DIR_A`): two builds of the gateway (each
// a directory under this repo holding index.js, e.g. a copy of another checkout's build/ in
// target/ab/, and build/) side by side, measured alternately against the JS
// proxy floor on the LLM routes, rounds apart so that drift in the machine lands on both. Prints
// the median µs each adds a request (1e6/rps - 1e6/rps(floor)), per route. AB_ROUTES picks routes
// by name (default chat,messages), AB_ROUNDS (default 5), AB_SECONDS (default 4).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";
import { startGateway } from "../tests/harness.mjs";
import { startUpstream } from "./upstream.mjs";
import { jsFloorOptions } from "./cold.mjs";
import { benchTenant, llmBody, llmRoutes, postScript } from "./routes.mjs";

const exec = promisify(execFile);
const dirs = process.argv.slice(2).map((d) => path.resolve(d));
if (dirs.length < 1) throw new Error("usage: node bench/ab.mjs BUILD_DIR [BUILD_DIR...]");
const names = (process.env.AB_ROUTES ?? "chat,messages").split(",");
const ROUNDS = Number(process.env.AB_ROUNDS ?? 5);
const SECONDS = process.env.AB_SECONDS ?? "4";
const rps = async (r, seconds = SECONDS) => {
  const { stdout } = await exec("wrk", ["-t1", "-c16", `-d${seconds}s`, ...Object.entries(r.headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), "-s", r.script, r.url]);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)[1]);
};

const upstream = await startUpstream();
const floor = new Miniflare(jsFloorOptions(upstream.url));
const floorUrl = await floor.ready;
const floorRoute = { url: new URL("/v1/chat/completions", floorUrl).href, headers: {}, script: postScript(JSON.stringify({ ...llmBody, model: "bench-model" })) };
const builds = [];
for (const dir of dirs) {
  const gw = await startGateway({ overrides: { scriptPath: path.join(dir, "index.js") } });
  const routes = await llmRoutes(gw, upstream, await benchTenant(gw));
  builds.push({ dir, gw, routes });
}
// AB_TTFC=1: streamed time to first content instead, sequential (as `make bench` measures it).
if (process.env.AB_TTFC) {
  const { request, Agent } = await import("node:http");
  const CONTENT = /"content":"[^"]|"text_delta"/;
  const ttfc = async (r, n = 200) => {
    const agent = new Agent({ keepAlive: true });
    const body = JSON.parse(readFileSync(r.script, "utf8").match(/wrk.body = (.*)/)[1]);
    const times = [];
    for (let i = 0; i < n + 20; i++) {
      const t = await new Promise((resolve, reject) => {
        const start = process.hrtime.bigint();
        const req = request(r.url, { method: "POST", agent, headers: { "content-type": "application/json", ...r.headers } }, (res) => {
          let seen = "";
          let done = false;
          res.on("data", (d) => {
            seen += d;
            if (!done && CONTENT.test(seen)) (done = true), resolve(Number(process.hrtime.bigint() - start) / 1e3);
          });
          res.on("end", () => done || reject(new Error(seen.slice(0, 200))));
        });
        req.on("error", reject);
        req.end(body);
      });
      if (i >= 20) times.push(t);
    }
    agent.destroy();
    return times.sort((a, b) => a - b)[n / 2];
  };
  const floorStream = { ...floorRoute, script: postScript(JSON.stringify({ ...llmBody, model: "bench-model", stream: true })) };
  for (let round = 0; round < ROUNDS; round++) {
    const base = await ttfc(floorStream);
    for (const b of builds) for (const name of names) console.log(`round ${round} ${name} ${b.dir}: p50 ${(await ttfc(b.routes[name])).toFixed(0)} µs, floor ${base.toFixed(0)}`);
  }
  process.exit(0);
}
const added = new Map();
for (let round = 0; round < ROUNDS; round++) {
  for (const name of names) {
    await rps(floorRoute, 1);
    const base = await rps(floorRoute);
    for (const b of round % 2 ? [...builds].reverse() : builds) {
      const r = b.routes[name];
      await rps(r, 1);
      const key = `${name} ${b.dir}`;
      added.set(key, [...(added.get(key) ?? []), 1e6 / (await rps(r)) - 1e6 / base]);
    }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [key, xs] of added) console.log(key.padEnd(60), "median added µs", median(xs).toFixed(0).padStart(5), " all", xs.map((x) => x.toFixed(0)).join(" "));
for (const b of builds) await b.gw.stop();
await floor.dispose();
upstream.server.close();
