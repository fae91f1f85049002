// Starts the built worker in Miniflare (real local KV, Durable Objects, Queues) from
// miniflare.config, captures every log line it writes, and gives tests a small HTTP client.
import { Miniflare } from "miniflare";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const ADMIN_TOKEN = "test-admin-" + randomBytes(12).toString("hex");
export const MASTER_KEY = randomBytes(32).toString("hex");

/**
 * Secrets a test planted, and those of kv-seed/: none may appear in any log line or any response
 * body of the gateway during the whole run (`gw.stop()` fails the file otherwise).
 */
export const planted = new Set([ADMIN_TOKEN, MASTER_KEY, ...seededSecrets()]);

function seededSecrets() {
  const dir = path.join(ROOT, "kv-seed", "tenants");
  return readdirSync(dir).flatMap((f) => {
    const t = JSON.parse(readFileSync(path.join(dir, f), "utf8"));
    return [
      ...(t.keys ?? []).map((k) => k.key),
      t.tenant?.destination?.secret,
      ...Object.values(t.sources ?? {}).flatMap((s) => s.secrets ?? []),
    ].filter((s) => typeof s === "string" && s.length >= 12);
  });
}

/** Every gateway response body this process read, to check for leaks at the end. */
const responses = [];
/** The copies of response bodies still being read (`stop()` waits for them). */
const pending = new Set();
const gateways = new Set();
const realFetch = globalThis.fetch;
/** The answers that show one new secret, once, and the field that holds it. */
const SHOWN_ONCE = [
  [/^POST .*\/((widget-)?keys|keys\/[^/]+\/rotate)$/, "key"],
  [/^POST .*\/destinations\/[^/]+\/rotate-secret$/, "secret"],
];
globalThis.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const method = init?.method ?? input?.method ?? "GET";
  const where = `${method} ${new URL(url).pathname}`;
  // What was planted before this answer: the secret it shows must not be one of them.
  const before = SHOWN_ONCE.some(([re]) => re.test(where)) ? new Set(planted) : undefined;
  const res = await realFetch(input, init);
  if ([...gateways].some((g) => url.startsWith(g.url.origin))) {
    const read = res.clone().text().then((text) => {
      const r = { where, text, before };
      responses.push(r);
      // The secret it shows is planted from now on: any later answer or log line showing it leaks.
      const shown = shownSecret(r);
      if (shown) planted.add(shown.secret);
    }, () => {});
    pending.add(read);
    read.finally(() => pending.delete(read));
  }
  return res;
};

/** The one new secret an answer shows, with its field and the parsed body, if it shows one. */
function shownSecret(r) {
  const field = SHOWN_ONCE.find(([re]) => re.test(r.where))?.[1];
  let body;
  try {
    body = field && JSON.parse(r.text);
  } catch {
    return undefined;
  }
  if (!body || typeof body[field] !== "string") return undefined;
  return { field, body, secret: body[field] };
}

/** The answer's text without the one new secret it may show; `old` if that is a secret planted before. */
function withoutShown(r) {
  const shown = shownSecret(r);
  if (!shown) return { text: r.text };
  const old = r.before?.has(shown.secret);
  delete shown.body[shown.field];
  return { text: JSON.stringify(shown.body), old };
}

/** `where` each planted secret was seen, never the secret itself. */
function findLeaks(logs) {
  const secrets = [...planted].filter((s) => s && s.length >= 8);
  const out = [];
  for (const l of logs) for (const s of secrets) if (l.message.includes(s)) out.push(`log line: ${l.message.replaceAll(s, "<secret>").slice(0, 200)}`);
  for (const r of responses) {
    // A key is shown once, in the answer that mints it (or rotates one); so is a destination's
    // new secret, in the answer to its rotation: that field only, and only if it is new.
    const { text, old } = withoutShown(r);
    if (old) out.push(`response to ${r.where}: shows as new a secret planted before it`);
    for (const s of secrets) if (text.includes(s)) out.push(`response to ${r.where}: ${text.replaceAll(s, "<secret>").slice(0, 200)}`);
  }
  return out;
}

/**
 * A stand-in for the Analytics Engine binding (Miniflare's own drops every point): each data
 * point is written as a log line `{"analytics_point": {...}}`, which `gw.points()` reads back.
 */
const ANALYTICS_RECORDER = {
  name: "analytics-recorder",
  modules: true,
  script: `export default function () {
    const text = (b) => (typeof b === "string" ? b : b == null ? null : new TextDecoder().decode(b));
    return { writeDataPoint(p = {}) {
      console.log(JSON.stringify({ analytics_point: { indexes: p.indexes ?? [], blobs: (p.blobs ?? []).map(text), doubles: p.doubles ?? [] } }));
    } };
  }`,
};
/** Options Miniflare shares between workers rather than takes per worker. */
const SHARED = ["handleStructuredLogs", "handleRuntimeStdio", "kvPersist", "durableObjectsPersist", "inspectorPort"];

/**
 * Starts the worker. `persist`: a directory where KV and Durable Objects keep their state, so
 * `gw.restart()` brings the worker back with it (Miniflare's queues are in memory only).
 * `recordAnalytics`: the ANALYTICS dataset records its points (`gw.points()`).
 * `faults`: run the worker through tests/faults/entry.mjs, whose bindings fail on command
 * (`gw.faults({...})`).
 * `overrides`: further Miniflare options.
 */
export async function startGateway({ seed = true, seedEnv = {}, extraBindings = {}, consumers = true, persist, recordAnalytics = false, faults = false, overrides = {} } = {}) {
  const config = JSON.parse(readFileSync(path.join(ROOT, "miniflare.config"), "utf8"));
  delete config["//"];
  // Without consumers, queued messages wait: the ingress path can be measured on its own.
  if (!consumers) delete config.queueConsumers;
  const logs = [];
  const options = {
    ...config,
    rootPath: ROOT,
    bindings: { ...config.bindings, ADMIN_TOKEN, MASTER_KEY, ...extraBindings },
    handleStructuredLogs: ({ level, message }) => {
      logs.push({ level, message });
    },
    ...(persist ? { kvPersist: path.join(persist, "kv"), durableObjectsPersist: path.join(persist, "do") } : {}),
    // GATEWAY_STDIO=1 shows workerd's own output (panics, runtime errors) while debugging.
    ...(process.env.GATEWAY_STDIO ? { handleRuntimeStdio: (out, err) => (out.pipe(process.stdout), err.pipe(process.stderr)) } : {}),
    // The fault entry imports the built worker, an ES module (Miniflare reads `.js` as CommonJS).
    ...(faults ? { scriptPath: "tests/faults/entry.mjs", modulesRules: [...config.modulesRules, { type: "ESModule", include: ["**/*.js"] }] } : {}),
    // Other Miniflare options (`make profile`: another build, the inspector).
    ...overrides,
  };
  const mfOptions = recordAnalytics ? withAnalyticsRecorder(options) : options;
  // The seeder worker is there for the first start only: `restart()` starts the gateway alone.
  const mf = new Miniflare(seed ? withSeeder(mfOptions) : mfOptions);
  const url = await mf.ready;
  // The seed's `${PORT}` is this run's port, as `make dev`'s is the one it serves on.
  if (seed) await loadSeed(mf, { PORT: new URL(url).port, ...seedEnv });
  const gw = new Gateway(mf, url, logs, mfOptions);
  gateways.add(gw);
  return gw;
}

/** The gateway as the first of two workers, its ANALYTICS dataset the recorder's wrapped binding. */
function withAnalyticsRecorder(options) {
  const shared = Object.fromEntries(SHARED.filter((k) => k in options).map((k) => [k, options[k]]));
  const gateway = Object.fromEntries(Object.entries(options).filter(([k]) => !SHARED.includes(k)));
  delete gateway.analyticsEngineDatasets;
  gateway.wrappedBindings = { ANALYTICS: ANALYTICS_RECORDER.name };
  return { ...shared, workers: [{ name: "gateway", ...gateway }, ANALYTICS_RECORDER] };
}

/**
 * Writes a seed into CONFIG from inside workerd, all of it in one request: a put through
 * Miniflare's Node proxy costs about 6 ms, and the model catalog is hundreds of keys.
 */
const SEEDER = {
  name: "kv-seeder",
  modules: true,
  kvNamespaces: { CONFIG: "CONFIG" },
  script: `export default { async fetch(request, env) {
    const entries = await request.json();
    await Promise.all(entries.map(({ key, value }) => env.CONFIG.put(key, value)));
    return new Response(null, { status: 204 });
  } }`,
};

/** The options with the seeder beside the gateway, which stays the first worker, as it was named. */
function withSeeder(options) {
  if (options.workers) return { ...options, workers: [...options.workers, SEEDER] };
  const shared = Object.fromEntries(SHARED.filter((k) => k in options).map((k) => [k, options[k]]));
  const gateway = Object.fromEntries(Object.entries(options).filter(([k]) => !SHARED.includes(k)));
  return { ...shared, workers: [gateway, SEEDER] };
}

/** Loads kv-seed/ the way `make dev` does: validated and sealed by core, under this run's MASTER_KEY. */
async function loadSeed(mf, seedEnv) {
  const out = path.join(ROOT, "target", `seed-${process.pid}.json`);
  execFileSync("cargo", ["run", "--quiet", "--bin", "seed", "--", "--out", out, "kv-seed"], {
    cwd: ROOT,
    env: { ...process.env, ...seedEnv, MASTER_KEY },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const body = readFileSync(out, "utf8");
  rmSync(out, { force: true });
  const seeder = await mf.getWorker(SEEDER.name);
  const r = await seeder.fetch("http://seed/", { method: "POST", body });
  if (r.status !== 204) throw new Error(`seed: ${r.status} ${await r.text()}`);
}

export class Gateway {
  constructor(mf, url, logs, options) {
    this.mf = mf;
    this.url = new URL(url);
    this.logs = logs;
    this.options = options;
  }

  /** Stops the runtime and starts it again on the same persisted state (a new port). */
  async restart() {
    await this.mf.dispose();
    this.mf = new Miniflare(this.options);
    this.url = new URL(await this.mf.ready);
  }

  /** One request; `json` sets the body and content type; returns {status, headers, body, text}. */
  async request(method, p, { json, body, headers = {}, key, admin = false } = {}) {
    const h = { ...headers };
    if (admin) h.authorization = `Bearer ${ADMIN_TOKEN}`;
    if (key) h.authorization = `Bearer ${key}`;
    if (json !== undefined) {
      h["content-type"] ??= "application/json";
      body = JSON.stringify(json);
    }
    const res = await fetch(new URL(p, this.url), { method, headers: h, body });
    const text = await res.text();
    let parsed;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  admin(method, p, json) {
    return this.request(method, `/v1/admin/tenants/${p}`, { admin: true, json });
  }

  /**
   * Runs gatewayctl (built by `cargo build --bin gatewayctl`) against this gateway, with the admin
   * token unless `admin` is false, and no config file unless `env` names one; `input` is its stdin.
   * Resolves {code, stdout, stderr}.
   */
  ctl(args, { env = {}, admin = true, input = "" } = {}) {
    const base = { PATH: process.env.PATH, GATEWAYCTL_CONFIG: "/nonexistent/none.json", GATEWAY_URL: this.url.origin, ...(admin ? { GATEWAY_ADMIN_TOKEN: ADMIN_TOKEN } : {}), ...env };
    return new Promise((resolve) => {
      const child = execFile(path.join(ROOT, "target", "debug", "gatewayctl"), args, { env: base, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
      child.stdin.on("error", () => {}); // a command that reads no stdin may exit before it is written
      child.stdin.end(input);
    });
  }

  /** Creates a tenant and a secret key for it; returns {tenant, key}. */
  async tenant(name, doc = {}) {
    const t = await this.admin("PUT", name, { name, ...doc });
    if (t.status !== 201 && t.status !== 200) throw new Error(`tenant ${name}: ${t.status} ${t.text}`);
    const k = await this.admin("POST", `${name}/keys`, { scopes: ["*"] });
    if (k.status !== 201) throw new Error(`key for ${name}: ${k.status} ${k.text}`);
    planted.add(k.body.key);
    return { tenant: name, key: k.body.key, keyId: k.body.id };
  }

  /** The first log line `pred` accepts, waiting for it (logs arrive after the response). */
  async waitForLog(pred, ms = 3000) {
    const until = Date.now() + ms;
    for (;;) {
      const line = this.logs.find((l) => pred(l.message));
      if (line || Date.now() > until) return line;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Makes platform bindings fail (with `faults`): `{DEDUPE: {rate: 1, mode: "throw"}}`, a KV
   * namespace or a queue by its binding name; `mode` "hang" never answers. `{}` clears them.
   */
  async faults(config) {
    const r = await fetch(new URL("/__faults", this.url), { method: "POST", body: JSON.stringify(config) });
    if (r.status !== 200) throw new Error(`faults: ${r.status}`);
  }

  /** The Analytics Engine data points written so far (with `recordAnalytics`). */
  points() {
    return this.logs.filter((l) => l.message.startsWith('{"analytics_point"')).map((l) => JSON.parse(l.message).analytics_point);
  }

  /** Where a planted secret reached a log line or a response body. */
  leaks() {
    return findLeaks(this.logs);
  }

  /** Stops the runtime; fails if any planted secret leaked during the run. */
  async stop() {
    // The last response copies read; a stream a test stopped reading (or the gateway still
    // holds open) never ends, so its copy is waited for only a moment.
    await Promise.race([Promise.all([...pending]), new Promise((r) => setTimeout(r, 1000))]);
    await this.mf.dispose();
    gateways.delete(this);
    const leaks = this.leaks();
    if (leaks.length) throw new Error(`secrets leaked:\n${leaks.join("\n")}`);
  }
}

/** Asserts an error response in the one error model. */
export function assertError(assert, res, status, type) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.body?.error?.type, type, res.text);
  assert.equal(typeof res.body.error.message, "string");
  assert.equal(res.body.error.request_id, res.headers.get("x-request-id"));
}

/** Waits until `predicate()` holds, polling; fails after `ms` with `what`. */
export async function until(predicate, ms = 20_000, what = "condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
