// The two loads the bench scripts put on a route: wrk's throughput and latency, and a stream's
// time to first content one request at a time.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import http from "node:http";

// Asynchronous on purpose: the upstream server lives in the caller's process and must keep answering.
const exec = promisify(execFile);
const headerArgs = (headers) => Object.entries(headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);

/** wrk -t1 on `url` (POSTing by `script`, if given): req/s, p50/p99 ms and non-2xx answers. */
export async function wrk(url, headers = {}, seconds = 5, connections = 16, script) {
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

// The first SSE event that carries text: what the gateway holds its answer for.
const CONTENT = /"content":"[^"]|"text_delta"/;

/** Time to first content of `n` streamed answers to `body` (text), one at a time after 20 that warm up: p50 and p99, ms. */
export async function firstContent(url, body, headers = {}, n = 300) {
  const times = [];
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < n + 20; i++) {
    const t = await new Promise((resolve, reject) => {
      const start = process.hrtime.bigint();
      const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", ...headers } }, (res) => {
        let seen = "";
        let done = false;
        res.on("data", (d) => {
          seen += d;
          if (!done && CONTENT.test(seen)) {
            done = true;
            resolve(Number(process.hrtime.bigint() - start) / 1e6);
          }
        });
        res.on("end", () => done || reject(new Error(`no content from ${url}: ${seen.slice(0, 200)}`)));
      });
      req.on("error", reject);
      req.end(body);
    });
    if (i >= 20) times.push(t);
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(n / 2)], p99: times[Math.floor(n * 0.99)] };
}
