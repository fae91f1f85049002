// POST /v1/mcp driven by the official MCP TypeScript SDK (Client + StreamableHTTPClientTransport),
// as an agent would: the tenant's Stripe integration (the shipped template, pointed at the
// provider-shaped stand-in of tests/mocks/saas.mjs, which checks the secret key) listed and
// called as tools, a provider refusal read as a tool error, the key's allowlist hiding and
// refusing, the tenant's guardrails redacting an address before the provider sees it, and the
// refusals an unauthenticated, under-scoped or cross-origin client meets.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { discoverOAuthProtectedResourceMetadata, extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import { startGateway, planted, ROOT } from "../harness.mjs";
import { startSaas, nestedForm } from "../mocks/saas.mjs";

const STRIPE_KEY = "sk_test_" + randomBytes(12).toString("hex");
planted.add(STRIPE_KEY);
const EMAIL = "jennyrosen@example.com";
const APP_ORIGIN = "https://app.example.com";
let gw, saas, mcpUrl;

/** The shipped Stripe template with its https origin moved to the stand-in (as templates.test.mjs does). */
function stripeTemplate(url) {
  const t = JSON.parse(readFileSync(path.join(ROOT, "kv-seed", "templates", "stripe.json"), "utf8"));
  t.integration.base_url = t.integration.base_url.replace(/^https:\/\/([^/]+)/, `${url}/stripe/$1`);
  return t;
}

/** A secret key of tenant `mcp` with these settings; planted so no answer or log may show it. */
async function mint(settings) {
  const r = await gw.admin("POST", "mcp/keys", settings);
  assert.equal(r.status, 201, r.text);
  planted.add(r.body.key);
  return r.body.key;
}

/** A connected SDK client: `initialize` and `notifications/initialized` done. */
async function connect(key, headers = {}) {
  const auth = key ? { authorization: `Bearer ${key}` } : {};
  const transport = new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: { ...auth, ...headers } } });
  const client = new Client({ name: "mcp-e2e", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

const text = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
const lastStripe = () => saas.seen.filter((s) => s.template === "stripe").at(-1);

let full, limited;
before(async () => {
  gw = await startGateway();
  saas = await startSaas({ stripe: STRIPE_KEY, salesforce: { refreshToken: "unused" } });
  mcpUrl = new URL("/v1/mcp", gw.url);
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("template:stripe", JSON.stringify(stripeTemplate(saas.url)));
  const { key: admin } = await gw.tenant("mcp", { allowed_origins: [APP_ORIGIN] });
  const install = await gw.request("POST", "/v1/integrations", { key: admin, json: { template: "stripe", id: "stripe", settings: { secret_key: STRIPE_KEY } } });
  assert.equal(install.status, 201, install.text);
  // The tenant's guardrails (its LLM config's) also guard tool arguments and results.
  const llm = await gw.admin("PUT", "mcp/llm", { providers: { echo: { kind: "mock" } }, routes: { echo: [{ provider: "echo", model: "mock-echo" }] }, guardrails: [{ detector: "email", request: "redact" }] });
  assert.equal(llm.status, 201, llm.text);
  full = await mint({ scopes: ["mcp"], allowed_tools: ["stripe__*"] });
  limited = await mint({ scopes: ["mcp"], allowed_tools: ["stripe__*", "!stripe__create_refund"] });
});

after(async () => {
  try {
    await gw?.stop();
  } finally {
    await saas?.close();
  }
});

test("the SDK initializes: our name, the revision it speaks, tools only, our instructions", async () => {
  const client = await connect(full);
  try {
    assert.equal(client.getServerVersion().name, "edge-gateway");
    assert.deepEqual(client.getServerCapabilities(), { tools: { listChanged: false } });
    assert.match(client.getInstructions(), /\{integration\}__\{endpoint\}/);
    // The transport names the agreed revision on every later request; a ping proves it is accepted.
    assert.equal(client.transport.protocolVersion, "2025-11-25");
    assert.deepEqual(await client.ping(), {});
  } finally {
    await client.close();
  }
});

test("tools/list shows the integration's endpoints as typed, annotated tools", async () => {
  const client = await connect(full);
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name), ["stripe__create_refund", "stripe__find_customer_by_email", "stripe__get_customer", "stripe__get_payment_intent", "stripe__list_customers"]);
    const get = tools.find((t) => t.name === "stripe__get_customer");
    assert.deepEqual(get.inputSchema, { type: "object", properties: { customer_id: { type: "string", pattern: "^cus_" } }, required: ["customer_id"] });
    assert.equal(get.annotations.readOnlyHint, true);
    const refund = tools.find((t) => t.name === "stripe__create_refund");
    assert.equal(refund.annotations.readOnlyHint, false);
    assert.deepEqual(refund.inputSchema.properties.reason.enum, ["duplicate", "fraudulent", "requested_by_customer"]);
  } finally {
    await client.close();
  }
});

test("a read tool calls the provider with the tenant's credential and answers its mapped data", async () => {
  const client = await connect(full);
  try {
    const r = await client.callTool({ name: "stripe__get_customer", arguments: { customer_id: "cus_NffrFeUfNV2Hib" } });
    assert.equal(r.isError, false, text(r));
    const want = { id: "cus_NffrFeUfNV2Hib", email: EMAIL, name: "Jenny Rosen", balance: "-$25.50" };
    assert.deepEqual(r.structuredContent, want);
    assert.deepEqual(JSON.parse(text(r)), want);
    const seen = lastStripe();
    assert.equal(seen.path, "/v1/customers/cus_NffrFeUfNV2Hib");
    assert.equal(seen.headers.authorization, `Bearer ${STRIPE_KEY}`);
  } finally {
    await client.close();
  }
});

test("a write tool posts the provider's form body and answers the refund", async () => {
  const client = await connect(full);
  try {
    const r = await client.callTool({ name: "stripe__create_refund", arguments: { payment_intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa", amount: 1000, reason: "requested_by_customer" } });
    assert.equal(r.isError, false, text(r));
    assert.deepEqual(r.structuredContent, { id: "re_1Nispe2eZvKYlo2Cd31jOCgZ", status: "succeeded", amount: 1000, currency: "USD" });
    const seen = lastStripe();
    assert.equal(`${seen.method} ${seen.path}`, "POST /v1/refunds");
    const form = nestedForm(seen.raw);
    assert.deepEqual([form.payment_intent, form.amount, form.reason], ["pi_3MtwBwLkdIwHu7ix28a3tqPa", "1000", "requested_by_customer"]);
  } finally {
    await client.close();
  }
});

test("a provider's refusal and bad input are tool errors the model can read", async () => {
  const client = await connect(full);
  try {
    const missing = await client.callTool({ name: "stripe__get_customer", arguments: { customer_id: "cus_missing" } });
    assert.equal(missing.isError, true);
    assert.match(text(missing), /No such customer: 'cus_missing'/);
    const refunded = await client.callTool({ name: "stripe__create_refund", arguments: { payment_intent_id: "pi_3MtwBwLkdIwHu7ixRefunded" } });
    assert.equal(refunded.isError, true);
    assert.match(text(refunded), /has already been refunded/);
    const bad = await client.callTool({ name: "stripe__get_customer", arguments: { customer_id: "../admin" } });
    assert.equal(bad.isError, true);
    assert.match(text(bad), /`input.customer_id` does not match/);
  } finally {
    await client.close();
  }
});

test("the key's allowlist hides a tool from tools/list and refuses to call it", async () => {
  const client = await connect(limited);
  try {
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes("stripe__get_customer"), names.join());
    assert.ok(!names.includes("stripe__create_refund"), names.join());
    const before = saas.seen.length;
    await assert.rejects(
      client.callTool({ name: "stripe__create_refund", arguments: { payment_intent_id: "pi_3MtwBwLkdIwHu7ix28a3tqPa", amount: 1 } }),
      (e) => e.code === -32602 && /unknown tool: stripe__create_refund/.test(e.message),
    );
    assert.equal(saas.seen.length, before, "the provider was never called");
  } finally {
    await client.close();
  }
});

test("the tenant's guardrail redacts an email in the arguments: the provider gets the placeholder", async () => {
  const client = await connect(full);
  try {
    const r = await client.callTool({ name: "stripe__find_customer_by_email", arguments: { email: EMAIL } });
    const seen = lastStripe();
    assert.equal(seen.path, "/v1/customers");
    const sent = seen.query.get("email");
    assert.ok(sent, "an email query was sent");
    assert.notEqual(sent, EMAIL);
    assert.ok(!seen.raw.includes(EMAIL) && !seen.query.toString().includes("jennyrosen"), seen.query.toString());
    assert.match(sent, /email/i, "the placeholder names what it stands for");
    // Nobody has the placeholder's address: the stand-in finds no customer.
    assert.ok(!JSON.stringify(r).includes("cus_NffrFeUfNV2Hib"), JSON.stringify(r));
  } finally {
    await client.close();
  }
});

test("no key: 401 with a challenge naming the RFC 9728 metadata, which the SDK then reads", async () => {
  await assert.rejects(connect(undefined), (e) => e.code === 401);
  const raw = await fetch(mcpUrl, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }) });
  assert.equal(raw.status, 401);
  const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(raw);
  assert.equal(resourceMetadataUrl?.href, new URL("/.well-known/oauth-protected-resource/v1/mcp", gw.url).href);
  assert.equal(scope, "mcp");
  const meta = await discoverOAuthProtectedResourceMetadata(mcpUrl, { resourceMetadataUrl });
  assert.equal(meta.resource, mcpUrl.href);
  assert.deepEqual(meta.bearer_methods_supported, ["header"]);
  assert.deepEqual(meta.scopes_supported, ["mcp"]);
  // Found without the challenge too, where the SDK looks first (the path-aware well-known URL).
  assert.equal((await discoverOAuthProtectedResourceMetadata(mcpUrl)).resource, mcpUrl.href);
});

test("a key without the mcp scope is refused with 403", async () => {
  const llmOnly = await mint({ scopes: ["llm"] });
  await assert.rejects(connect(llmOnly), (e) => e.code === 403);
});

test("a browser Origin outside the tenant's allowed_origins is refused with 403; an allowed one passes", async () => {
  await assert.rejects(connect(full, { origin: "https://evil.example" }), (e) => e.code === 403 && /Origin is not allowed/.test(e.message));
  const client = await connect(full, { origin: APP_ORIGIN });
  try {
    assert.deepEqual(await client.ping(), {});
  } finally {
    await client.close();
  }
});

test("GET /v1/mcp is 405 (no server-sent stream): the SDK carries on without one", async () => {
  const r = await gw.request("GET", "/v1/mcp", { key: full, headers: { accept: "text/event-stream" } });
  assert.equal(r.status, 405, r.text);
  assert.equal(r.body.error.type, "method_not_allowed");
  assert.match(r.body.error.message, /allowed: POST$/);
  assert.equal(r.headers.get("allow"), "POST");
});

test("/openapi.json documents the MCP endpoint and its metadata route", async () => {
  const r = await gw.request("GET", "/openapi.json");
  assert.ok(r.body.paths["/v1/mcp"]?.post, "POST /v1/mcp");
  assert.ok(r.body.paths["/.well-known/oauth-protected-resource/v1/mcp"]?.get, "the metadata route");
});
