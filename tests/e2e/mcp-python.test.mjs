// POST /v1/mcp driven by the official MCP Python SDK (`mcp`, pinned and installed into
// target/mcp-venv by `make test`): tests/e2e/mcp_client.py runs as a child process against the
// worker, once letting the SDK choose how to connect (it probes server/discover first, speaking
// 2026-07-28 with _meta and the Mcp-Method/Mcp-Name headers) and once pinned to the initialize
// handshake; it lists the tools, calls a read tool, meets a provider's refusal and a tool its
// key may not call, and prints what it saw as JSON.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { execFile } from "node:child_process";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { startGateway, planted, ROOT } from "../harness.mjs";
import { startSaas } from "../mocks/saas.mjs";

const PYTHON = path.join(ROOT, "target", "mcp-venv", "bin", "python");
const SCRIPT = path.join(ROOT, "tests", "e2e", "mcp_client.py");
const STRIPE_KEY = "sk_test_" + randomBytes(12).toString("hex");
planted.add(STRIPE_KEY);
let gw, saas, key;

/** Runs the Python client with `plan` on stdin; resolves its parsed JSON output. */
function python(plan) {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env.PATH, MCP_URL: new URL("/v1/mcp", gw.url).href, MCP_KEY: key };
    const child = execFile(PYTHON, [SCRIPT], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`mcp_client.py failed (${error.code}): ${stderr.slice(-3000)}`));
      resolve(JSON.parse(stdout));
    });
    child.stdin.end(JSON.stringify(plan));
  });
}

const venv = existsSync(PYTHON) ? false : "target/mcp-venv is missing: `make test` (or `make mcp-venv`) installs the pinned Python SDK";

before(async () => {
  if (venv) return;
  gw = await startGateway();
  saas = await startSaas({ stripe: STRIPE_KEY, salesforce: { refreshToken: "unused" } });
  const t = JSON.parse(readFileSync(path.join(ROOT, "kv-seed", "templates", "stripe.json"), "utf8"));
  t.integration.base_url = t.integration.base_url.replace(/^https:\/\/([^/]+)/, `${saas.url}/stripe/$1`);
  await (await gw.mf.getKVNamespace("CONFIG")).put("template:stripe", JSON.stringify(t));
  const { key: admin } = await gw.tenant("py");
  const install = await gw.request("POST", "/v1/integrations", { key: admin, json: { template: "stripe", id: "stripe", settings: { secret_key: STRIPE_KEY } } });
  assert.equal(install.status, 201, install.text);
  const k = await gw.admin("POST", "py/keys", { scopes: ["mcp"], allowed_tools: ["stripe__get_*", "stripe__find_*"] });
  assert.equal(k.status, 201, k.text);
  key = k.body.key;
  planted.add(key);
});

after(async () => {
  try {
    await gw?.stop();
  } finally {
    await saas?.close();
  }
});

const STEPS = [
  ["list"],
  ["call", "stripe__get_customer", { customer_id: "cus_NffrFeUfNV2Hib" }],
  ["call", "stripe__get_customer", { customer_id: "cus_missing" }],
  ["call", "stripe__create_refund", { payment_intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa" }],
];

/** What both ways of connecting must see. */
function assertSteps(out) {
  const [list, read, refused, denied] = out.steps;
  assert.deepEqual(list.tools, ["stripe__find_customer_by_email", "stripe__get_customer", "stripe__get_payment_intent"]);
  assert.equal(read.is_error, false, read.text);
  assert.deepEqual(read.structured, { id: "cus_NffrFeUfNV2Hib", email: "jennyrosen@example.com", name: "Jenny Rosen", balance: "-$25.50" });
  assert.equal(refused.is_error, true);
  assert.match(refused.text, /No such customer: 'cus_missing'/);
  assert.equal(denied.error?.code, -32602, JSON.stringify(denied));
  assert.match(denied.error.message, /unknown tool: stripe__create_refund/);
  const seen = saas.seen.filter((s) => s.template === "stripe");
  assert.ok(seen.every((s) => s.headers.authorization === `Bearer ${STRIPE_KEY}`));
  assert.ok(!seen.some((s) => s.path === "/v1/refunds"), "the refused tool never reached the provider");
}

test("the Python SDK's default connection speaks 2026-07-28: list, call, tool error, refused tool", { skip: venv }, async () => {
  const out = await python({ mode: "auto", steps: STEPS });
  assert.equal(out.protocol_version, "2026-07-28");
  assert.equal(out.server, "edge-gateway");
  assertSteps(out);
});

test("the Python SDK's initialize handshake (mode legacy): the same", { skip: venv }, async () => {
  const out = await python({ mode: "legacy", steps: STEPS });
  assert.equal(out.protocol_version, "2025-11-25");
  assert.equal(out.server, "edge-gateway");
  assertSteps(out);
});
