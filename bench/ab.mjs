// `node bench/ab.mjs DIR_A DIR_B` (`make bench-ab BEFORE=DIR_A`): two builds of the gateway (each
// a directory under this repo holding index.js, e.g. a copy of another checkout's build/ in
// target/ab/, and build/) side by side, measured alternately against the JS proxy floor on the
// LLM routes, rounds apart so that drift in the machine lands on both. Prints the median µs each
// adds a request (1e6/rps - 1e6/rps(floor)), per route. AB_ROUTES picks routes by name (default
// chat,messages), AB_ROUNDS (default 5), AB_SECONDS (default 4); AB_TTFC=1 measures streamed time
// to first content instead (sequential, as `make bench` does).
import path from "node:path";
import { Miniflare } from "miniflare";
import { startGateway } from "../tests/harness.mjs";
import { startUpstream } from "./upstream.mjs";
import { jsFloorOptions } from "./cold.mjs";
import { firstContent, wrk } from "./load.mjs";
import { benchTenant, llmBody, llmRoutes, postScript } from "./routes.mjs";

const dirs = process.argv.slice(2).map((d) => path.resolve(d));
if (dirs.length < 1) throw new Error("usage: node bench/ab.mjs BUILD_DIR [BUILD_DIR...]");
const names = (process.env.AB_ROUTES ?? "chat,messages").split(",");
const ROUNDS = Number(process.env.AB_ROUNDS ?? 5);
const SECONDS = process.env.AB_SECONDS ?? "4";
const rps = async (r, seconds = SECONDS) => (await wrk(r.url, r.headers, seconds, 16, r.script)).rps;

const upstream = await startUpstream();
const floor = new Miniflare(jsFloorOptions(upstream.url));
const floorUrl = await floor.ready;
const floorRoute = (body) => ({ url: new URL("/v1/chat/completions", floorUrl).href, headers: {}, body, script: postScript(body) });
const builds = [];
for (const dir of dirs) {
  const gw = await startGateway({ overrides: { scriptPath: path.join(dir, "index.js") } });
  const routes = await llmRoutes(gw, upstream, await benchTenant(gw));
  builds.push({ dir, gw, routes });
}

if (process.env.AB_TTFC) {
  const p50 = async (r) => (await firstContent(r.url, r.body, r.headers, 200)).p50 * 1000;
  const floorStream = floorRoute(JSON.stringify({ ...llmBody, model: "bench-model", stream: true }));
  for (let round = 0; round < ROUNDS; round++) {
    const base = await p50(floorStream);
    for (const b of builds) for (const name of names) console.log(`round ${round} ${name} ${b.dir}: p50 ${(await p50(b.routes[name])).toFixed(0)} µs, floor ${base.toFixed(0)}`);
  }
} else {
  const floorChat = floorRoute(JSON.stringify({ ...llmBody, model: "bench-model" }));
  const added = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of names) {
      await rps(floorChat, 1);
      const base = await rps(floorChat);
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
}
for (const b of builds) await b.gw.stop();
await floor.dispose();
upstream.server.close();
