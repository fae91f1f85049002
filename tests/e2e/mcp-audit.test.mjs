// The MCP audit trail end to end, with the official TypeScript MCP SDK as the agent: a key scoped
// to `mcp` whose allowlist names one tool of an integration installed against a local stand-in
// CRM; one call that succeeds and one the allowlist denies. Each call is a record in the tenant's
// event log (GET /v1/admin/tenants/{t}/tool-calls: key, tool, outcome, a SHA-256 of the arguments
// and never the arguments), counted in the usage API by tool, and shown by the console.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium } from "playwright-core";
import { startGateway, until, planted, ADMIN_TOKEN } from "../harness.mjs";
import { startCrm } from "../mocks/crm.mjs";

const TENANT = "audited";
const CRM_TOKEN = "static-crm-token";
// Arguments a record must never show: the contact id is a marker no other text carries.
const CONTACT = "c" + Date.now();
const SECRET_BODY = { name: "Grace-" + Date.now() };
let gw, crm, admin, mcp, mcpKeyId, client;

/** SHA-256 (hex) of a JSON value written compactly with its keys sorted, as the gateway digests. */
function digest(v) {
  const sorted = (x) =>
    Array.isArray(x) ? x.map(sorted) : x && typeof x === "object" ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sorted(x[k])])) : x;
  return createHash("sha256").update(JSON.stringify(sorted(v))).digest("hex");
}

before(async () => {
  gw = await startGateway();
  crm = await startCrm({ clientId: "unused", clientSecret: "unused" });
  ({ key: admin } = await gw.tenant(TENANT));
  const installed = await gw.admin("POST", `${TENANT}/integrations`, { template: "rest", id: "crm", settings: { base_url: `${crm.url}/api`, token: CRM_TOKEN } });
  assert.equal(installed.status, 201, installed.text);
  const k = await gw.admin("POST", `${TENANT}/keys`, { scopes: ["mcp"], allowed_tools: ["crm__get"] });
  assert.equal(k.status, 201, k.text);
  planted.add(k.body.key);
  [mcp, mcpKeyId] = [k.body.key, k.body.id];
  client = new Client({ name: "audit-e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL("/v1/mcp", gw.url), { requestInit: { headers: { authorization: "Bearer " + mcp } } });
  await client.connect(transport);
});
after(async () => {
  await client?.close();
  await gw?.stop();
  await crm?.close();
});

const calls = (q = "") => gw.request("GET", `/v1/admin/tenants/${TENANT}/tool-calls${q}`, { admin: true });

/** The tenant's tool calls once `n` are recorded (they are sent after each response). */
async function recorded(n) {
  let r;
  await until(async () => (r = await calls()).status === 200 && r.body.data.length >= n, 20_000, `${n} tool calls recorded`);
  return r.body.data;
}

const getArgs = { resource: "contacts", id: CONTACT };
const createArgs = { resource: "contacts", body: SECRET_BODY };

test("a call that succeeds and one the allowlist denies are each a record, without their arguments", async () => {
  const started = Date.now() / 1000;
  const listed = await client.listTools();
  assert.deepEqual(listed.tools.map((t) => t.name), ["crm__get"], "the key sees only its tool");
  const ok = await client.callTool({ name: "crm__get", arguments: getArgs });
  assert.equal(ok.isError, false, JSON.stringify(ok));
  assert.equal(ok.structuredContent.contact.id, CONTACT);
  await assert.rejects(client.callTool({ name: "crm__create", arguments: createArgs }), /unknown tool: crm__create/);
  assert.ok(!crm.received.some((x) => x.method === "POST"), "the denied call reached nothing");

  const data = await recorded(2);
  assert.equal(data.length, 2, JSON.stringify(data));
  const [denied, done] = data; // newest first
  assert.deepEqual([denied.tool, denied.outcome, denied.key], ["crm__create", "denied", mcpKeyId]);
  assert.deepEqual([done.tool, done.outcome, done.key], ["crm__get", "ok", mcpKeyId]);
  assert.equal(done.arguments_sha256, digest(getArgs));
  assert.equal(denied.arguments_sha256, digest(createArgs));
  assert.ok(done.bytes > 0 && denied.bytes === 0, `bytes: ${done.bytes}, ${denied.bytes}`);
  assert.ok(done.duration_ms >= 0 && done.at >= Math.floor(started) && done.at <= Date.now() / 1000 + 1, `at ${done.at}`);
  assert.match(done.request_id, /^req_/);
  const text = JSON.stringify(data);
  assert.ok(!text.includes(CONTACT) && !text.includes(SECRET_BODY.name), "no argument in a record");
  // Nor in any log line.
  const logged = gw.logs.filter((l) => l.message.includes(CONTACT) || l.message.includes(SECRET_BODY.name));
  assert.deepEqual(logged, [], "no argument in the logs");
});

test("tool calls filter by tool, key and outcome, page by cursor, and refuse a bad filter", async () => {
  await recorded(2);
  const tools = async (q) => {
    const r = await calls(q);
    assert.equal(r.status, 200, r.text);
    return r.body.data.map((c) => c.tool);
  };
  assert.deepEqual(await tools("?outcome=denied"), ["crm__create"]);
  assert.deepEqual(await tools("?tool=crm__get"), ["crm__get"]);
  assert.deepEqual(await tools(`?key=${mcpKeyId}&outcome=ok`), ["crm__get"]);
  assert.deepEqual(await tools("?key=key_nobody"), []);
  const first = await calls("?limit=1");
  assert.deepEqual([first.body.data.length, first.body.data[0].tool], [1, "crm__create"]);
  assert.ok(first.body.next_cursor, "more to come");
  const next = await calls(`?limit=1&cursor=${encodeURIComponent(first.body.next_cursor)}`);
  assert.deepEqual([next.body.data[0].tool, next.body.next_cursor], ["crm__get", null]);
  for (const bad of ["outcome=fine", "limit=0", "cursor=nope", "since=yesterday"]) {
    const r = await calls(`?${bad}`);
    assert.equal(r.status, 400, `${bad}: ${r.text}`);
    assert.equal(r.body.error.type, "invalid_request", bad);
  }
  assert.equal((await gw.request("GET", "/v1/admin/tenants/nobody-here/tool-calls", { admin: true })).status, 404);
  assert.equal((await gw.request("GET", `/v1/admin/tenants/${TENANT}/tool-calls`, { key: admin })).status, 403, "a tenant key is not the admin token");
});

test("usage counts MCP requests by tool: a denied call under no tool (a made-up name makes no row), and an integration's own calls are no tool", async () => {
  // The same integration called directly: its subject is the integration, not a tool.
  const direct = await gw.request("POST", "/v1/integrations/crm/get", { key: admin, json: { input: getArgs } });
  assert.equal(direct.status, 200, direct.text);
  const byTool = (r) => Object.fromEntries(r.body.data.map((d) => [d.tool, d.requests]));
  let r;
  await until(
    async () => {
      r = await gw.request("GET", "/v1/usage?group_by=tool", { key: admin });
      const t = r.status === 200 && byTool(r);
      return t && t.crm__get === 1 && t.null >= 3;
    },
    20_000,
    "usage by tool",
  );
  assert.deepEqual(r.body.group_by, ["tool"]);
  const t = byTool(r);
  assert.deepEqual(Object.keys(t).sort(), ["crm__get", "null"], JSON.stringify(r.body.data));
  assert.equal(t.crm__get, 1);
  const both = await gw.request("GET", "/v1/usage?group_by=route,tool", { key: admin });
  const rows = both.body.data.map((d) => `${d.route}:${d.tool}`).sort();
  assert.ok(rows.includes("mcp:crm__get") && rows.includes("mcp:null") && rows.includes("integration:null"), rows.join(" "));
  assert.ok(!rows.includes("integration:crm"), "an integration's subject is not a tool");
});

test("the console lists the tenant's tool calls", async () => {
  await recorded(2);
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(new URL("/console", gw.url).href);
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { level: 1, name: "Tenants" }).waitFor();
    await page.goto(new URL(`/console#/t/${TENANT}/tool-calls`, gw.url).href);
    await page.getByRole("heading", { level: 1, name: "Tool calls" }).waitFor();
    const table = page.getByRole("table", { name: `Tool calls of ${TENANT}, newest first` });
    await table.waitFor();
    const cells = await table.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    assert.equal(cells.length, 2, JSON.stringify(cells));
    assert.deepEqual(cells[0].slice(0, 3), ["crm__create", mcpKeyId, "denied"]);
    assert.deepEqual(cells[1].slice(0, 3), ["crm__get", mcpKeyId, "ok"]);
    assert.match(cells[1][3], /^\d+ ms$/);
    assert.equal(cells[1][6], digest(getArgs).slice(0, 12));
    // Filtering by outcome asks the API again.
    await page.getByLabel("Outcome").selectOption("denied");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForFunction(() => document.querySelectorAll("tbody tr").length === 1);
    assert.equal(await table.locator("tbody tr td").first().textContent(), "crm__create");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
