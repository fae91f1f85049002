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
import { sign } from "../tests/signers.mjs";
import { tmpdir } from "node:os";
import { randomBytes } from "node:crypto";
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
const benchKey = (await gw.admin("PUT", "bench", { name: "Bench" }), (await gw.admin("POST", "bench/keys")).body.key);
let whsec, tgToken, lua;
if (only !== "llm") {
// Webhook ingress: a tenant whose destination is the same fast upstream.
whsec = "whsec_" + randomBytes(32).toString("base64");
tgToken = "bench-tg-" + randomBytes(8).toString("hex");
const stdSecret = "whsec_" + randomBytes(24).toString("base64");
await gw.admin("PUT", "bench", { name: "Bench", destination: { url: `${upstream.url}/hooks`, secret: whsec } });
await gw.admin("PUT", "bench/sources/tg", { kind: "telegram", secrets: [tgToken] });
await gw.admin("PUT", "bench/sources/std", { kind: "standard", secrets: [stdSecret] });
// Every request a new update_id: the full verify + dedupe + enqueue path (and delivery behind it).
lua = path.join(tmpdir(), `bench-webhook-${process.pid}.lua`);
writeFileSync(lua, `
local n = 0
local prefix = math.floor(os.clock() * 1000000) + ${Date.now() % 1000000} * 1000
request = function()
  n = n + 1
  local body = '{"update_id":' .. (prefix * 100000 + n) .. ',"message":{"message_id":1,"date":1700000000,"chat":{"id":42,"type":"private"},"text":"hi"}}'
  return wrk.format("POST", nil, {["content-type"] = "application/json", ["x-telegram-bot-api-secret-token"] = "${tgToken}"}, body)
end
`);
await run("webhook new event, delivered (telegram)", new URL("/v1/webhooks/bench/tg", gw.url).href, {}, "gateway GET /healthz", lua);
// The same signed event again and again: verify (HMAC) + dedupe, answered as a duplicate.
const stdBody = JSON.stringify({ type: "invoice.paid", data: { id: "in_1" } });
const stdHeaders = sign.standard(stdSecret, stdBody, { id: "msg_bench_dup" });
const dupLua = path.join(tmpdir(), `bench-dup-${process.pid}.lua`);
writeFileSync(dupLua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(stdBody)}\nwrk.headers["content-type"] = "application/json"\n`);
await run("webhook duplicate (standard, HMAC)", new URL("/v1/webhooks/bench/std", gw.url).href, stdHeaders, "gateway GET /healthz", dupLua);

// Channel send: the same upstream playing the WhatsApp Cloud API, next to calling it directly
// with the same request.
await gw.admin("PUT", "bench/channels/wa", { kind: "whatsapp", base_url: upstream.url, phone_number_id: "1065", rate_limit_per_minute: 1000000000, credentials: { access_token: "bench-token" } });
const sendBody = JSON.stringify({ conversation_id: "16505551234", type: "text", text: "Your order shipped" });
const sendLua = path.join(tmpdir(), `bench-send-${process.pid}.lua`);
writeFileSync(sendLua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(sendBody)}\nwrk.headers["content-type"] = "application/json"\n`);
const waBody = JSON.stringify({ messaging_product: "whatsapp", recipient_type: "individual", to: "16505551234", type: "text", text: { preview_url: false, body: "Your order shipped" } });
const waLua = path.join(tmpdir(), `bench-wa-${process.pid}.lua`);
writeFileSync(waLua, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(waBody)}\nwrk.headers["content-type"] = "application/json"\n`);
await run("provider direct (WhatsApp send)", `${upstream.url}/v21.0/1065/messages`, { authorization: "Bearer bench-token" }, undefined, waLua);
await run("channel send (whatsapp)", new URL("/v1/channels/wa/messages", gw.url).href, { authorization: `Bearer ${benchKey}` }, "JS proxy floor -> upstream", sendLua);

// Integration execute: the upstream as the provider, uncached and cached, next to calling it directly.
await gw.admin("PUT", "bench/integrations/api", {
  name: "Bench API", base_url: upstream.url, rate_limit: { per_minute: 1000000000 },
  endpoints: {
    item: { method: "GET", path: "/items/{id}", response: { field_mappings: { id: "id", ok: "ok" } } },
    cached_item: { method: "GET", path: "/items/{id}", cache: { ttl_seconds: 300 }, response: { field_mappings: { id: "id", ok: "ok" } } },
  },
});
const execLua = path.join(tmpdir(), `bench-exec-${process.pid}.lua`);
writeFileSync(execLua, `wrk.method = "POST"\nwrk.body = '{"input": {"id": "1"}}'\nwrk.headers["content-type"] = "application/json"\n`);
await run("provider direct (GET /items/1)", `${upstream.url}/items/1`, {});
await run("integration execute, uncached", new URL("/v1/integrations/api/item", gw.url).href, { authorization: `Bearer ${benchKey}` }, "JS proxy floor -> upstream", execLua);
await run("integration execute, cached", new URL("/v1/integrations/api/cached_item", gw.url).href, { authorization: `Bearer ${benchKey}` }, "JS proxy floor -> upstream", execLua);
}

// LLM proxy: an OpenAI-style upstream, with the tenant's auth and rate limits on (limits high
// enough never to refuse), next to the upstream called directly and the JS floor proxying it.
await gw.admin("PUT", "bench/llm", {
  providers: { up: { kind: "openai_compatible", base_url: `${upstream.url}/v1` } },
  routes: { fast: [{ provider: "up", model: "bench-model" }] },
  limits: { rpm: 1000000000, tpm: 1000000000000 },
});
const llmLua = (body) => {
  const f = path.join(tmpdir(), `bench-llm-${randomBytes(4).toString("hex")}.lua`);
  writeFileSync(f, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(JSON.stringify(body))}\nwrk.headers["content-type"] = "application/json"\n`);
  return f;
};
const ask = [{ role: "user", content: "Say something." }];
const oaiBody = { model: "fast", messages: ask, max_tokens: 64 };
const directLlm = `${upstream.url}/v1/chat/completions`;
const auth = { authorization: `Bearer ${benchKey}` };
await run("LLM upstream direct", directLlm, {}, undefined, llmLua({ ...oaiBody, model: "bench-model" }));
await run("JS proxy floor -> LLM upstream", new URL("/v1/chat/completions", floorUrl).href, {}, "LLM upstream direct", llmLua({ ...oaiBody, model: "bench-model" }));
await run("llm chat/completions", new URL("/v1/chat/completions", gw.url).href, auth, "JS proxy floor -> LLM upstream", llmLua(oaiBody));
await run("llm messages (translated)", new URL("/v1/messages", gw.url).href, auth, "JS proxy floor -> LLM upstream", llmLua(oaiBody));
await run("LLM upstream direct, stream", directLlm, {}, undefined, llmLua({ ...oaiBody, model: "bench-model", stream: true }));
await run("llm chat/completions, stream", new URL("/v1/chat/completions", gw.url).href, auth, "LLM upstream direct, stream", llmLua({ ...oaiBody, stream: true }));
await run("llm messages, stream (translated)", new URL("/v1/messages", gw.url).href, auth, "LLM upstream direct, stream", llmLua({ ...oaiBody, stream: true }));

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
await ingress.admin("PUT", "bench", { name: "Bench", destination: { url: `${upstream.url}/hooks`, secret: whsec } });
await ingress.admin("PUT", "bench/sources/tg", { kind: "telegram", secrets: [tgToken] });
await run("  same gateway: GET /healthz", new URL("/healthz", ingress.url).href, {}, "upstream direct");
await run("  webhook verify+dedupe+enqueue", new URL("/v1/webhooks/bench/tg", ingress.url).href, {}, "  same gateway: GET /healthz", lua);
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
