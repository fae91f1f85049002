// The admin API: CRUD for every tenant document, secrets write-only and sealed per tenant.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startGateway, assertError, planted } from "../harness.mjs";

let gw;
before(async () => (gw = await startGateway({ seed: false })));
after(async () => gw?.stop());

const DEST_SECRET = "whsec_" + Buffer.from("e2e-destination-secret-0123456789").toString("base64");
const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const WA_TOKEN = "EAAG-e2e-whatsapp-access-token";
const OPENAI_KEY = "sk-proj-e2e-provider-key-0000";
const CLIENT_SECRET = "e2e-oauth-client-secret";
for (const s of [DEST_SECRET, SLACK_SECRET, WA_TOKEN, OPENAI_KEY, CLIENT_SECRET]) planted.add(s);

const docs = {
  "sources/slack-main": { kind: "slack", secrets: [SLACK_SECRET], tolerance_seconds: 300 },
  "channels/wa": { kind: "whatsapp", base_url: "http://127.0.0.1:1/graph", phone_number_id: "1234567890", credentials: { access_token: WA_TOKEN } },
  "integrations/crm": {
    name: "CRM",
    base_url: "https://crm.example/api",
    auth: { type: "oauth2", grant: "client_credentials", token_url: "https://crm.example/oauth/token", client_id: "cid", client_secret: CLIENT_SECRET },
    endpoints: { get_contact: { method: "GET", path: "/contacts/{id}" } },
  },
  llm: { providers: { oa: { kind: "openai", api_key: OPENAI_KEY }, m: { kind: "mock" } }, routes: { default: [{ provider: "oa", model: "gpt-4o-mini" }] } },
};

test("tenant CRUD round trip; the destination secret is never echoed", async () => {
  const put = await gw.admin("PUT", "crud", { name: "Crud Co", allowed_origins: ["https://crud.example"], destination: { url: "https://crud.example/hooks", secret: DEST_SECRET } });
  assert.equal(put.status, 201, put.text);
  assert.deepEqual(put.body.destination.secret, { set: true });
  assert.ok(!put.text.includes(DEST_SECRET));
  const get = await gw.admin("GET", "crud");
  assert.equal(get.status, 200);
  assert.equal(get.body.name, "Crud Co");
  assert.deepEqual(get.body.destination.secret, { set: true });
  assert.ok(!get.text.includes(DEST_SECRET));
  // GET, edit, PUT back with the {"set": true} marker keeps the stored secret.
  const edited = { ...get.body, name: "Crud Inc" };
  const again = await gw.admin("PUT", "crud", edited);
  assert.equal(again.status, 200, again.text);
  // The destination is the tenant's destination record `default`, sealed there.
  const raw = JSON.parse(await (await gw.mf.getKVNamespace("CONFIG")).get("destination:crud:default"));
  assert.match(raw.secret.$sealed, /^v2\.[0-9a-f]{8}\./);
  assert.ok(!JSON.stringify(raw).includes(DEST_SECRET), "the secret is sealed in KV");
  assert.equal((await gw.admin("GET", "crud")).body.destination.secret.opens, undefined);
});

test("every tenant document round-trips with its secrets write-only", async () => {
  for (const [p, doc] of Object.entries(docs)) {
    const put = await gw.admin("PUT", `crud/${p}`, doc);
    assert.equal(put.status, 201, `${p}: ${put.text}`);
    const get = await gw.admin("GET", `crud/${p}`);
    assert.equal(get.status, 200);
    for (const s of planted) assert.ok(!put.text.includes(s) && !get.text.includes(s), `${p} echoed a secret`);
  }
  const src = await gw.admin("GET", "crud/sources/slack-main");
  assert.deepEqual(src.body, { kind: "slack", secrets: [{ set: true }], tolerance_seconds: 300 });
  assert.deepEqual((await gw.admin("GET", "crud/llm")).body.providers.oa.api_key, { set: true });
  assert.deepEqual((await gw.admin("GET", "crud/integrations/crm")).body.auth.client_secret, { set: true });
  const list = await gw.admin("GET", "crud/sources");
  assert.deepEqual(list.body, { data: [{ id: "slack-main" }] });
  assert.equal((await gw.admin("DELETE", "crud/channels/wa")).status, 204);
  assertError(assert, await gw.admin("GET", "crud/channels/wa"), 404, "not_found");
  assertError(assert, await gw.admin("DELETE", "crud/channels/wa"), 404, "not_found");
});

test("unknown fields are rejected with 422 naming each of them", async () => {
  const r = await gw.admin("PUT", "crud/sources/bad", { kind: "slack", secrets: ["s"], tolerance: 5, hmac_header: "x" });
  assertError(assert, r, 422, "validation_error");
  assert.match(r.body.error.message, /`tolerance`/);
  assert.match(r.body.error.message, /`hmac_header`/);
  const nested = await gw.admin("PUT", "crud", { name: "x", destination: { url: "https://a.example", secret: DEST_SECRET, retries: 3 } });
  assertError(assert, nested, 422, "validation_error");
  assert.match(nested.body.error.message, /`destination\.retries`/);
  const types = await gw.admin("PUT", "crud", { name: 5 });
  assertError(assert, types, 422, "validation_error");
  assert.match(types.body.error.message, /name/);
  assertError(assert, await gw.admin("PUT", "crud/sources/bad", { kind: "carrier-pigeon", secrets: ["s"] }), 422, "validation_error");
  assertError(assert, await gw.admin("GET", "crud/sources/bad"), 404, "not_found");
});

test("documents of a tenant that does not exist are refused", async () => {
  assertError(assert, await gw.admin("PUT", "ghost/sources/s", { kind: "slack", secrets: ["s"] }), 404, "not_found");
  assertError(assert, await gw.admin("POST", "ghost/keys"), 404, "not_found");
});

test("a sealed credential copied into another tenant's record does not open there", async () => {
  await gw.admin("PUT", "victim", { name: "Victim" });
  await gw.admin("PUT", "victim/sources/slack-main", { kind: "slack", secrets: [SLACK_SECRET] });
  await gw.admin("PUT", "thief", { name: "Thief" });
  await gw.admin("PUT", "thief/sources/slack-main", { kind: "slack", secrets: ["thief-own-secret"] });
  const kv = await gw.mf.getKVNamespace("CONFIG");
  // Someone with KV write access copies the victim's sealed record over the thief's.
  await kv.put("source:thief:slack-main", await kv.get("source:victim:slack-main"));
  const thief = await gw.admin("GET", "thief/sources/slack-main");
  assert.deepEqual(thief.body.secrets, [{ set: true, opens: false }]);
  const victim = await gw.admin("GET", "victim/sources/slack-main");
  assert.deepEqual(victim.body.secrets, [{ set: true }]);
  // Same tenant, different record: also refused.
  await kv.put("source:victim:other", await kv.get("source:victim:slack-main"));
  assert.deepEqual((await gw.admin("GET", "victim/sources/other")).body.secrets, [{ set: true, opens: false }]);
});

test("keys are listed by id and hint, never by value or hash", async () => {
  await gw.admin("PUT", "keyed", { name: "Keyed" });
  const k = await gw.admin("POST", "keyed/keys", { scopes: ["llm"] });
  assert.equal(k.status, 201);
  planted.add(k.body.key);
  assert.deepEqual(k.body.scopes, ["llm"]);
  const list = await gw.admin("GET", "keyed/keys");
  assert.equal(list.body.data.length, 1);
  assert.equal(list.body.data[0].id, k.body.id);
  assert.ok(!list.text.includes(k.body.key));
  assert.ok(!("hash" in list.body.data[0]));
  assertError(assert, await gw.admin("POST", "keyed/keys", { scopes: ["root"] }), 422, "validation_error");
  // Key times are Unix seconds: a time in milliseconds (a date thousands of years away) is refused, saying so.
  const inMs = await gw.admin("POST", "keyed/keys", { scopes: ["llm"], expires_at: Date.now() + 86_400_000 });
  assertError(assert, inMs, 422, "validation_error");
  assert.match(inMs.body.error.message, /milliseconds.*Unix seconds/, inMs.body.error.message);
  assert.equal((await gw.admin("GET", "keyed/keys")).body.data.length, 1, "no key was minted");
});

const NEEDS_SCOPES = 'a secret key needs "scopes": one or more of llm, channels, integrations, deliveries, mcp, or "*" for every scope';

test("a secret key is never minted without scopes: 422 naming them, and nothing is minted", async () => {
  await gw.admin("PUT", "unscoped", { name: "Unscoped" });
  for (const body of [undefined, {}, { scopes: [] }, { scopes: null }, { name: "no scopes" }]) {
    const r = await gw.admin("POST", "unscoped/keys", body);
    assertError(assert, r, 422, "validation_error");
    assert.ok(r.body.error.message.includes(NEEDS_SCOPES), `${JSON.stringify(body)}: ${r.body.error.message}`);
  }
  assert.deepEqual((await gw.admin("GET", "unscoped/keys")).body.data, [], "no key was minted");
  // A key's scopes cannot be taken away by a change either.
  const k = await gw.admin("POST", "unscoped/keys", { scopes: ["llm"] });
  assert.equal(k.status, 201, k.text);
  planted.add(k.body.key);
  for (const scopes of [[], null]) {
    const r = await gw.admin("PATCH", `unscoped/keys/${k.body.id}`, { scopes });
    assertError(assert, r, 422, "validation_error");
    assert.ok(r.body.error.message.includes(NEEDS_SCOPES), r.body.error.message);
  }
  assert.deepEqual((await gw.admin("GET", `unscoped/keys/${k.body.id}`)).body.scopes, ["llm"], "unchanged");
  // A publishable (widget) key takes no scopes and shows none.
  const pk = await gw.admin("POST", "unscoped/widget-keys");
  assert.equal(pk.status, 201, pk.text);
  planted.add(pk.body.key);
  assert.ok(!("scopes" in pk.body), pk.text);
  const listed = (await gw.admin("GET", "unscoped/keys")).body.data.find((x) => x.id === pk.body.id);
  assert.ok(listed && !("scopes" in listed), JSON.stringify(listed));
});

test("a key stored without scopes (before they were required) keeps every scope and is shown as [\"*\"]", async () => {
  await gw.admin("PUT", "legacy", { name: "Legacy" });
  // Written as that version of the admin API wrote it: the record under the key's hash, the index under its id.
  const key = "sk_" + randomBytes(24).toString("base64url");
  planted.add(key);
  const hash = createHash("sha256").update(key).digest("hex");
  const id = "key_0123456789abcdef";
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put(`key:${hash}`, JSON.stringify({ tenant: "legacy", id, kind: "secret", scopes: [], created_at: 1_700_000_000 }));
  await kv.put(`keys:legacy:${id}`, JSON.stringify({ id, kind: "secret", hash, hint: `${key.slice(0, 7)}…`, scopes: [], created_at: 1_700_000_000 }));
  const list = await gw.admin("GET", "legacy/keys");
  assert.deepEqual(list.body.data.map((k) => [k.id, k.scopes]), [[id, ["*"]]]);
  assert.deepEqual((await gw.admin("GET", `legacy/keys/${id}`)).body.scopes, ["*"]);
  const me = await gw.request("GET", "/v1/me", { key });
  assert.equal(me.status, 200, me.text);
  assert.deepEqual(me.body.scopes, ["*"]);
  // It still opens every scope's routes.
  for (const p of ["/v1/models", "/v1/deliveries/evt_none.default", "/v1/marketplace"]) {
    const r = await gw.request("GET", p, { key });
    assert.notEqual(r.status, 403, `${p}: ${r.text}`);
    assert.ok(r.status < 500, `${p}: ${r.status}`);
  }
  // Changing another setting keeps it working; a rotation copies its scopes.
  const renamed = await gw.admin("PATCH", `legacy/keys/${id}`, { name: "old" });
  assert.equal(renamed.status, 200, renamed.text);
  assert.deepEqual(renamed.body.scopes, ["*"]);
  const rotated = await gw.admin("POST", `legacy/keys/${id}/rotate`);
  assert.equal(rotated.status, 201, rotated.text);
  planted.add(rotated.body.key);
  assert.deepEqual(rotated.body.scopes, ["*"]);
  assert.deepEqual((await gw.request("GET", "/v1/me", { key: rotated.body.key })).body.scopes, ["*"]);
});

test("no secret reached a log line", () => {
  assert.deepEqual(gw.leaks(), []);
});
