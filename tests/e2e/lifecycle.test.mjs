// State that must not outlive, or cross, the lifetime of a tenant or an integration: an integration's
// cached results after it is installed again (with other credentials) or its tenant is created
// again under the same id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { startGateway, planted } from "../harness.mjs";

const KEYS = { a: "key-a-" + randomBytes(8).toString("hex"), b: "key-b-" + randomBytes(8).toString("hex") };
for (const k of Object.values(KEYS)) planted.add(k);

let gw, api;
before(async () => {
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  // A provider whose answer says whose credentials asked (never the credentials themselves).
  api = http.createServer((req, res) => {
    req.resume();
    const owner = Object.entries(KEYS).find(([, k]) => req.headers["x-api-key"] === k)?.[0];
    api.calls = (api.calls ?? 0) + 1;
    res.writeHead(owner ? 200 : 401, { "content-type": "application/json" });
    res.end(JSON.stringify(owner ? { ok: true, contact: { id: "c1", owner } } : { ok: false }));
  });
  await new Promise((ok) => api.listen(0, "127.0.0.1", ok));
});
after(async () => {
  await gw?.stop();
  await new Promise((ok) => api?.close(ok));
});

/** An integration whose `get` is cached, calling the stand-in with `apiKey`. */
const integration = (apiKey) => ({
  name: "CRM",
  base_url: `http://127.0.0.1:${api.address().port}`,
  auth: { type: "api_key", in: "header", name: "x-api-key", api_key: apiKey },
  endpoints: { get: { method: "GET", path: "/contacts/c1", cache: { ttl_seconds: 300 }, response: { success_path: "ok", data_path: "contact" } } },
});

test("an integration's cached results are not read after it is installed again, or its tenant created again", async () => {
  const T = "cache-phoenix";
  let { key } = await gw.tenant(T);
  const install = async (apiKey) => assert.equal((await gw.admin("PUT", `${T}/integrations/crm`, integration(apiKey))).status, 201);
  const call = async () => {
    const r = await gw.request("POST", "/v1/integrations/crm/get", { key, json: { input: {} } });
    assert.equal(r.status, 200, r.text);
    return [r.body.cached, r.body.data.owner];
  };
  await install(KEYS.a);
  assert.deepEqual(await call(), [false, "a"]);
  assert.deepEqual(await call(), [true, "a"], "cached while the integration lives");

  // Deleted and installed again under its id, with other credentials: its own results only.
  assert.equal((await gw.admin("DELETE", `${T}/integrations/crm`)).status, 204);
  await install(KEYS.b);
  assert.deepEqual(await call(), [false, "b"], "a miss, then the new credentials' answer");
  assert.deepEqual(await call(), [true, "b"]);

  // The tenant deleted and created again, the same integration installed again: a miss.
  assert.equal((await gw.request("DELETE", `/v1/admin/tenants/${T}?confirm=${T}`, { admin: true })).status, 204);
  ({ key } = await gw.tenant(T));
  await install(KEYS.b);
  const calls = api.calls;
  assert.deepEqual(await call(), [false, "b"], "the old tenant's answer is not read");
  assert.equal(api.calls, calls + 1, "the provider was asked");
});
