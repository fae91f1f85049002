// Tenant identity comes from the key alone; admin access from ADMIN_TOKEN alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, assertError } from "../harness.mjs";

let gw, a, b;
before(async () => {
  gw = await startGateway();
  a = await gw.tenant("tenant-a");
  b = await gw.tenant("tenant-b");
});
after(async () => gw?.stop());

test("a tenant key identifies its tenant", async () => {
  const r = await gw.request("GET", "/v1/me", { key: a.key });
  assert.equal(r.status, 200);
  assert.equal(r.body.tenant, "tenant-a");
  assert.equal(r.body.key_id, a.keyId);
  const viaHeader = await gw.request("GET", "/v1/me", { headers: { "x-api-key": b.key } });
  assert.equal(viaHeader.body.tenant, "tenant-b");
});

test("no key, a malformed key and an unknown key are 401", async () => {
  assertError(assert, await gw.request("GET", "/v1/me"), 401, "authentication_error");
  assertError(assert, await gw.request("GET", "/v1/me", { headers: { authorization: "Basic Zm9vOmJhcg==" } }), 401, "authentication_error");
  assertError(assert, await gw.request("GET", "/v1/me", { key: "sk_" + "A".repeat(32) }), 401, "authentication_error");
  assertError(assert, await gw.request("GET", "/v1/me", { key: "not-a-key" }), 401, "authentication_error");
});

test("a client header cannot choose the tenant", async () => {
  for (const h of ["x-tenant-id", "x-tenant", "tenant"]) {
    const r = await gw.request("GET", "/v1/me", { key: a.key, headers: { [h]: "tenant-b" } });
    assert.equal(r.body.tenant, "tenant-a");
  }
});

test("a revoked key stops working at once", async () => {
  const k = await gw.admin("POST", "tenant-a/keys", { scopes: ["*"] });
  assert.equal(k.status, 201);
  assert.equal((await gw.request("GET", "/v1/me", { key: k.body.key })).status, 200);
  const del = await gw.admin("DELETE", `tenant-a/keys/${k.body.id}`);
  assert.equal(del.status, 204);
  assertError(assert, await gw.request("GET", "/v1/me", { key: k.body.key }), 401, "authentication_error");
  assertError(assert, await gw.admin("DELETE", `tenant-a/keys/${k.body.id}`), 404, "not_found");
});

test("another tenant's admin id cannot revoke my key", async () => {
  // tenant-b's key id used under tenant-a's path: not found, and tenant-b's key keeps working.
  assertError(assert, await gw.admin("DELETE", `tenant-a/keys/${b.keyId}`), 404, "not_found");
  assert.equal((await gw.request("GET", "/v1/me", { key: b.key })).status, 200);
});

test("tenant keys cannot use the admin API; a wrong admin token is 401", async () => {
  assertError(assert, await gw.request("GET", "/v1/admin/tenants/tenant-a", { key: a.key }), 403, "permission_denied");
  assertError(assert, await gw.request("GET", "/v1/admin/tenants/tenant-b", { key: a.key }), 403, "permission_denied");
  assertError(
    assert,
    await gw.request("GET", "/v1/admin/tenants/tenant-a", { headers: { authorization: "Bearer wrong-token" } }),
    401,
    "authentication_error",
  );
  assertError(assert, await gw.request("GET", "/v1/admin/tenants/tenant-a"), 401, "authentication_error");
});

test("publishable widget keys are refused on secret-key routes", async () => {
  const pk = await gw.admin("POST", "tenant-a/widget-keys");
  assert.equal(pk.status, 201);
  assert.match(pk.body.key, /^pk_/);
  assertError(assert, await gw.request("GET", "/v1/me", { key: pk.body.key }), 403, "permission_denied");
});

test("deleting a tenant revokes its keys", async () => {
  const c = await gw.tenant("tenant-c");
  // Without the confirmation (a path such as .../integrations/.. resolves to the tenant): refused.
  assertError(assert, await gw.admin("DELETE", "tenant-c"), 400, "invalid_request");
  assertError(assert, await gw.admin("DELETE", "tenant-c?confirm=tenant-d"), 400, "invalid_request");
  assert.equal((await gw.request("GET", "/v1/me", { key: c.key })).status, 200, "nothing was deleted");
  assert.equal((await gw.admin("DELETE", "tenant-c?confirm=tenant-c")).status, 204);
  assertError(assert, await gw.request("GET", "/v1/me", { key: c.key }), 401, "authentication_error");
  assertError(assert, await gw.admin("GET", "tenant-c"), 404, "not_found");
});

test("the seeded demo tenant's dev key works", async () => {
  const r = await gw.request("GET", "/v1/me", { key: "sk_dev_demo_local_only_0000000000" });
  assert.equal(r.status, 200);
  assert.equal(r.body.tenant, "demo");
});
