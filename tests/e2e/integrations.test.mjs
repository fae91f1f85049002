// Integration execute end to end against a local CRM with OAuth2: mapping and transforms,
// cache hits, token caching and refresh on 401, retry then success, timeout, breaker opening,
// 422 on bad input, mock and debug options, secrets never shown.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { startGateway, assertError, planted } from "../harness.mjs";
import { startCrm } from "../mocks/crm.mjs";

const CLIENT_SECRET = "crm-secret-" + randomBytes(8).toString("hex");
planted.add(CLIENT_SECRET);
let gw, crm, key;

before(async () => {
  gw = await startGateway();
  crm = await startCrm({ clientId: "gateway", clientSecret: CLIENT_SECRET });
  ({ key } = await gw.tenant("flows"));
  const auth = { type: "oauth2", grant: "client_credentials", token_url: `${crm.url}/oauth/token`, client_id: "gateway", client_secret: CLIENT_SECRET, scopes: ["contacts.read"] };
  const crmDoc = {
    name: "CRM", category: "crm", base_url: `${crm.url}/api`, auth, timeout_ms: 1000,
    retry: { max_retries: 3, initial_delay_ms: 50 },
    endpoints: {
      get_contact: {
        method: "GET", path: "/contacts/{contact_id}",
        input_schema: { contact_id: { type: "string", required: true, pattern: "^c\\d+$" }, limit: { type: "integer", max: 10 } },
        response: { success_path: "ok", data_path: "contact", error_path: "error.message",
          field_mappings: { name: "name", email: "email", phone: "phone" },
          transforms: { name: ["trim"], email: ["lowercase"], phone: [{ type: "e164" }] } },
        cache: { ttl_seconds: 60, key_fields: ["contact_id"] },
        mock_response: { ok: true, contact: { name: "Mock", email: "MOCK@X.IO", phone: "4155552671" } },
      },
      flaky: { method: "GET", path: "/flaky", response: { success_path: "ok", data_path: "contact" } },
      slow: { method: "GET", path: "/slow" },
    },
  };
  assert.equal((await gw.admin("PUT", "flows/integrations/crm", crmDoc)).status, 201);
  const downDoc = { name: "Down", base_url: `${crm.url}/api`, auth, circuit_breaker: { failure_threshold: 2, open_seconds: 30 }, endpoints: { ping: { method: "GET", path: "/down", response: { error_path: "error.message" } } } };
  assert.equal((await gw.admin("PUT", "flows/integrations/down", downDoc)).status, 201);
});
after(async () => {
  await gw?.stop();
  await crm?.close();
});

const run = (id, endpoint, body) => gw.request("POST", `/v1/integrations/${id}/${endpoint}`, { key, json: body });

test("execute: OAuth token fetched once, response mapped and transformed", async () => {
  const r = await run("crm", "get_contact", { input: { contact_id: "c1" }, context: { channel: "whatsapp" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.success, true);
  assert.deepEqual(r.body.data, { name: "Ada Lovelace", email: "ada@example.com", phone: "+14155552671" });
  assert.equal(r.body.cached, false);
  assert.equal(r.body.retries, 0);
  assert.equal(r.body.status_code, 200);
  assert.equal(r.body.request_id, r.headers.get("x-request-id"));
  assert.equal(typeof r.body.execution_time_ms, "number");
  assert.equal(crm.tokenRequests, 1);
});

test("a second identical GET is served from the cache; skip_cache calls again with the cached token", async () => {
  const calls = crm.calls["/api/contacts/c1"];
  const hit = await run("crm", "get_contact", { input: { contact_id: "c1" } });
  assert.equal(hit.status, 200);
  assert.equal(hit.body.cached, true);
  assert.deepEqual(hit.body.data.email, "ada@example.com");
  assert.equal(crm.calls["/api/contacts/c1"], calls, "the provider was not called");
  const fresh = await run("crm", "get_contact", { input: { contact_id: "c1" }, options: { skip_cache: true } });
  assert.equal(fresh.body.cached, false);
  assert.equal(crm.calls["/api/contacts/c1"], calls + 1);
  assert.equal(crm.tokenRequests, 1, "the token was reused");
});

test("a 401 from the provider refreshes the token once and retries", async () => {
  crm.revokeAll();
  const r = await run("crm", "get_contact", { input: { contact_id: "c2" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.success, true);
  assert.equal(r.body.retries, 1);
  assert.equal(crm.tokenRequests, 2);
});

test("concurrent callers whose token was revoked share one refresh", async () => {
  // Make sure a token is cached, then revoke it at the provider.
  assert.equal((await run("crm", "get_contact", { input: { contact_id: "c7" }, options: { skip_cache: true } })).status, 200);
  crm.revokeAll();
  const before = crm.tokenRequests;
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => run("crm", "get_contact", { input: { contact_id: `c${20 + i}` } })));
  for (const r of results) assert.equal(r.status, 200, r.text);
  assert.equal(crm.tokenRequests, before + 1, "one token request for ten concurrent callers");
});

test("transient failures are retried per the policy, then succeed", async () => {
  crm.flakyFailures = 2;
  const r = await run("crm", "flaky", {});
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.success, true);
  assert.equal(r.body.retries, 2);
  assert.deepEqual(r.body.data, { name: "steady" });
});

test("a provider's refusal and a timeout are reported in the envelope with 502 and 504", async () => {
  const nf = await run("crm", "get_contact", { input: { contact_id: "c404" } });
  assert.equal(nf.status, 502, nf.text);
  assert.equal(nf.body.success, false);
  assert.deepEqual(nf.body.error, { code: "upstream_error", message: "contact not found" });
  assert.equal(nf.body.status_code, 404);
  const slow = await run("crm", "slow", {});
  assert.equal(slow.status, 504, slow.text);
  assert.equal(slow.body.error.code, "timeout");
});

test("the circuit breaker opens after repeated provider failures", async () => {
  assert.equal((await run("down", "ping", {})).status, 502);
  assert.equal((await run("down", "ping", {})).status, 502);
  let open;
  for (let i = 0; i < 20; i++) {
    open = await run("down", "ping", {});
    if (open.status === 503) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(open.status, 503, open.text);
  assert.equal(open.body.error.code, "circuit_open");
  assert.ok(Number(open.headers.get("retry-after")) >= 1);
});

test("bad input is one 422 listing every violation; unknown integrations and endpoints are 404", async () => {
  const r = await run("crm", "get_contact", { input: { limit: "ten" } });
  assertError(assert, r, 422, "validation_error");
  assert.match(r.body.error.message, /`input.contact_id` is required/);
  assert.match(r.body.error.message, /`input.limit` must be of type integer/);
  const pattern = await run("crm", "get_contact", { input: { contact_id: "../admin" } });
  assertError(assert, pattern, 422, "validation_error");
  assertError(assert, await run("crm", "get_contact", { input: {}, extra: 1 }), 422, "validation_error");
  assertError(assert, await run("nope", "x", {}), 404, "not_found");
  assertError(assert, await run("crm", "nope", {}), 404, "not_found");
});

test("options.mock answers from the mock response without calling the provider", async () => {
  const before = JSON.stringify(crm.calls);
  const r = await run("crm", "get_contact", { input: { contact_id: "c9" }, options: { mock: true } });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.data, { name: "Mock", email: "mock@x.io", phone: "+14155552671" });
  assert.equal(JSON.stringify(crm.calls), before);
});

test("options.debug shows the outgoing request with secrets redacted", async () => {
  const r = await run("crm", "get_contact", { input: { contact_id: "c3" }, options: { debug: true } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.debug.request.url, `${crm.url}/api/contacts/c3`);
  assert.equal(r.body.debug.request.headers.authorization, "Bearer [redacted]");
  assert.equal(r.body.debug.response.status, 200);
  assert.ok(!r.text.includes(CLIENT_SECRET) && !/tok-\d/.test(r.text));
});

test("the marketplace lists and searches the seeded templates", async () => {
  const all = await gw.request("GET", "/v1/marketplace", { key });
  assert.equal(all.status, 200, all.text);
  const ids = all.body.data.map((t) => t.id).sort();
  for (const id of ["hubspot", "jira", "rest", "salesforce", "shopify", "stripe", "zendesk"]) assert.ok(ids.includes(id), id);
  assert.ok(!all.text.includes("{{settings."), "listings show settings, not configs");
  const shop = await gw.request("GET", "/v1/marketplace?q=order%20number", { key });
  assert.deepEqual(shop.body.data.map((t) => t.id), ["shopify"]);
  const support = await gw.request("GET", "/v1/marketplace?category=support", { key });
  assert.deepEqual(support.body.data.map((t) => t.id).sort(), ["freshdesk", "intercom", "jira", "zendesk"]);
  // Each listing says what the credentials need and what each endpoint takes.
  const shopify = all.body.data.find((t) => t.id === "shopify");
  assert.deepEqual(shopify.scopes, ["read_orders", "write_orders", "read_products"]);
  const note = shopify.endpoints.find((e) => e.name === "add_order_note");
  assert.deepEqual([note.method, note.path, note.input.note.required], ["PUT", "/orders/{order_id}.json", true]);
  const graphql = all.body.data.find((t) => t.id === "graphql");
  assert.deepEqual(graphql.endpoints.map((e) => [e.name, e.path, e.graphql]), [["query", "<path>", true], ["typename", "<path>", true]]);
});

test("install a template with settings, execute it, test it, read it redacted, delete it", async () => {
  const bad = await gw.request("POST", "/v1/integrations", { key, json: { template: "rest", id: "myrest", settings: { base_url: "ftp://x" } } });
  assertError(assert, bad, 422, "validation_error");
  assert.match(bad.body.error.message, /`settings.base_url` does not match/);
  assert.match(bad.body.error.message, /`settings.token` is required/);
  assertError(assert, await gw.request("POST", "/v1/integrations", { key, json: { template: "nope", id: "x", settings: {} } }), 404, "not_found");

  const token = "static-crm-token";
  const ok = await gw.request("POST", "/v1/integrations", { key, json: { template: "rest", id: "myrest", settings: { base_url: `${crm.url}/api`, token } } });
  assert.equal(ok.status, 201, ok.text);
  assert.deepEqual(ok.body.integration.auth.token, { set: true });
  assert.ok(!ok.text.includes(token));
  assertError(assert, await gw.request("POST", "/v1/integrations", { key, json: { template: "rest", id: "myrest", settings: { base_url: `${crm.url}/api`, token } } }), 409, "conflict");

  const r = await run("myrest", "get", { input: { resource: "contacts", id: "c5" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.contact.id, "c5");
  const t = await gw.request("POST", "/v1/integrations/myrest/test", { key });
  assert.equal(t.status, 200, t.text);
  assert.equal(t.body.ok, true);
  assert.equal(t.body.status_code, 200);

  // The call's input fills the template's `{{input.*}}` placeholders (install fills only settings).
  const created = await run("myrest", "create", { input: { resource: "contacts", body: { name: "Grace", tags: ["vip"] } } });
  assert.equal(created.status, 200, created.text);
  const sent = crm.received.findLast((x) => x.method === "POST" && x.path === "/api/contacts");
  assert.deepEqual(JSON.parse(sent.body), { name: "Grace", tags: ["vip"] });
  assert.deepEqual(created.body.data.created, { name: "Grace", tags: ["vip"] });

  // A placeholder value of `.` or `..` would be a dot segment that climbs out of the path:
  // refused before anything is sent, naming the field.
  const before = crm.received.length;
  for (const input of [{ resource: "contacts", id: ".." }, { resource: "..", id: "c1" }, { resource: ".", id: "x" }]) {
    const r = await run("myrest", "get", { input });
    assertError(assert, r, 422, "validation_error");
    assert.match(r.body.error.message, input.id === ".." ? /`input.id`/ : /`input.resource`/);
  }
  assert.equal(crm.received.length, before, "nothing reached the provider");

  const got = await gw.request("GET", "/v1/integrations/myrest", { key });
  assert.equal(got.body.integration.template, "rest");
  assert.deepEqual(got.body.integration.auth.token, { set: true });
  assertError(assert, await gw.request("GET", "/v1/integrations/myrest", { key: (await gw.tenant("stranger")).key }), 404, "not_found");
  assert.equal((await gw.request("DELETE", "/v1/integrations/myrest", { key })).status, 204);
  assertError(assert, await run("myrest", "get", { input: { resource: "contacts", id: "c5" } }), 404, "not_found");
});

test("a failing test call is reported, not thrown", async () => {
  const r = await gw.request("POST", "/v1/integrations", { key, json: { template: "rest", id: "wrongkey", settings: { base_url: `${crm.url}/api`, token: "not-the-token" } } });
  assert.equal(r.status, 201, r.text);
  const t = await gw.request("POST", "/v1/integrations/wrongkey/test", { key });
  assert.equal(t.status, 200, t.text);
  assert.equal(t.body.ok, false);
  assert.equal(t.body.status_code, 401);
  assert.equal(t.body.error.code, "upstream_error");
});

test("an OAuth token never outlives the integration that fetched it", async () => {
  // The operator configures an OAuth2 integration; a tenant key calls it, so its token is cached.
  const auth = { type: "oauth2", grant: "client_credentials", token_url: `${crm.url}/oauth/token`, client_id: "gateway", client_secret: CLIENT_SECRET };
  const opDoc = { name: "CRM", base_url: `${crm.url}/api`, auth, endpoints: { get: { method: "GET", path: "/contacts/{id}" } } };
  assert.equal((await gw.admin("PUT", "flows/integrations/crm2", opDoc)).status, 201);
  assert.equal((await run("crm2", "get", { input: { id: "c1" } })).status, 200);
  const operatorTokens = [...crm.valid].filter((t) => t.startsWith("tok-"));
  assert.ok(operatorTokens.length > 0);

  // The tenant deletes it and installs, under the same id, a template pointed at its own server.
  const seen = [];
  const evil = http.createServer((req, res) => {
    seen.push({ path: req.url, authorization: req.headers.authorization });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(req.url === "/token" ? JSON.stringify({ access_token: "tenant-own-token", expires_in: 3600 }) : '{"ok":true}');
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}`;
  try {
    const kv = await gw.mf.getKVNamespace("CONFIG");
    await kv.put("template:oauth-rest", JSON.stringify({
      id: "oauth-rest", name: "OAuth REST", category: "generic", provider: "any", description: "Any API behind OAuth2 client credentials",
      settings: { base_url: { type: "string", required: true }, token_url: { type: "string", required: true }, client_id: { type: "string", required: true }, client_secret: { type: "string", required: true } },
      integration: { name: "OAuth REST", base_url: "{{settings.base_url}}", auth: { type: "oauth2", grant: "client_credentials", token_url: "{{settings.token_url}}", client_id: "{{settings.client_id}}", client_secret: "{{settings.client_secret}}" },
        endpoints: { get: { method: "GET", path: "/contacts/{id}" } }, test: { endpoint: "get", input: { id: "c1" } } },
    }));
    assert.equal((await gw.request("DELETE", "/v1/integrations/crm2", { key })).status, 204);
    const installed = await gw.request("POST", "/v1/integrations", { key, json: { template: "oauth-rest", id: "crm2", settings: { base_url: evilUrl, token_url: `${evilUrl}/token`, client_id: "gateway", client_secret: "guess" } } });
    assert.equal(installed.status, 201, installed.text);
    assert.equal((await run("crm2", "get", { input: { id: "c1" } })).status, 200);
    assert.equal((await gw.request("POST", "/v1/integrations/crm2/test", { key })).status, 200);
    const calls = seen.filter((x) => x.path !== "/token");
    assert.ok(calls.length >= 2, JSON.stringify(seen));
    for (const c of calls) assert.equal(c.authorization, "Bearer tenant-own-token", "only the tenant's own token reaches its server");
    for (const t of operatorTokens) assert.ok(!seen.some((x) => x.authorization?.includes(t)), "the operator's token never left");
  } finally {
    await new Promise((r) => evil.close(r));
  }
});

test("client_secret_basic: the token endpoint gets the client's credentials in a Basic header, not the form", async () => {
  const auth = { type: "oauth2", grant: "client_credentials", token_url: `${crm.url}/oauth/token`, client_id: "gateway", client_secret: CLIENT_SECRET, token_auth: "client_secret_basic" };
  const doc = { name: "Basic CRM", base_url: `${crm.url}/api`, auth, endpoints: { get_contact: { method: "GET", path: "/contacts/{contact_id}", response: { data_path: "contact" } } } };
  assert.equal((await gw.admin("PUT", "flows/integrations/basic-crm", doc)).status, 201);
  const before = crm.basicLogins ?? 0;
  const r = await run("basic-crm", "get_contact", { input: { contact_id: "c7" } });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.id, "c7");
  assert.equal(crm.basicLogins, before + 1);
  const sent = crm.received.findLast((x) => x.path === "/oauth/token");
  assert.ok(!sent.body.includes("client_secret"), "the secret is not in the form");
  const bad = await gw.admin("PUT", "flows/integrations/bad-basic", { ...doc, auth: { type: "bearer", token: "t", token_auth: "client_secret_basic" } });
  assert.equal(bad.status, 422);
  assert.match(bad.text, /`auth.token_auth` does not apply to auth type `bearer`/);
});

test("no secret reached a log line", () => {
  assert.deepEqual(gw.leaks(), []);
});
