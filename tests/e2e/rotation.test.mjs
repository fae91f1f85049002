// Master key rotation under load. Every kind of secret is in use throughout: an LLM provider's
// key, a webhook source's signing secret, a tenant destination's signing secret, a channel's bot
// token, an integration's OAuth client secret, and a widget conversation id signed by the old
// key. The new key is added first in MASTER_KEYS (a deploy: here a restart on the same persisted
// KV and Durable Objects), a reseal pass runs while requests keep coming, none fails, and after
// the old key is removed every secret opens under the new key alone. An integration whose
// provider rotates refresh tokens (and revokes a grant whose retired token comes back) keeps
// sending the one it rotated to throughout.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { startGateway, planted, MASTER_KEY, ROOT } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";
import { startCrm } from "../mocks/crm.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startProviders, providerTokens } from "../mocks/providers.mjs";
import { sourceSecrets, sourceDoc, sample } from "../samples.mjs";

const T = "rotating";
const ORIGIN = "https://shop.example.com";
const NEW_KEY = randomBytes(32).toString("base64");
const OPENAI_KEY = "sk-rot-" + randomBytes(12).toString("hex");
const CLIENT_SECRET = "client-" + randomBytes(12).toString("hex");
const REFRESH_TOKEN = "rt-configured-" + randomBytes(12).toString("hex");
const DEST = "whsec_" + randomBytes(32).toString("base64");
const S = sourceSecrets();
const tokens = providerTokens();
for (const s of [NEW_KEY, OPENAI_KEY, CLIENT_SECRET, REFRESH_TOKEN, DEST, S.standard, ...Object.values(tokens)]) planted.add(s);

let gw, dir, llm, crm, dest, prov, key, pk, oldConversation;

before(async () => {
  dir = mkdtempSync(path.join(ROOT, "target", "persist-"));
  gw = await startGateway({ persist: dir, extraBindings: { MOCK_STREAM_DELAY_MS: "0" } });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: "unused" });
  crm = await startCrm({ clientId: "gateway", clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN });
  dest = await startDestination(DEST);
  prov = await startProviders({ tokens });
  ({ key } = await gw.tenant(T, {
    destination: { url: dest.url, secret: DEST },
    allowed_origins: [ORIGIN],
    assistant: { system_prompt: "Be brief.", model: "default" },
  }));
  const put = async (p, doc) => assert.equal((await gw.admin("PUT", `${T}/${p}`, doc)).status, 201, p);
  await put("llm", { providers: { oa: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY } }, routes: { default: [{ provider: "oa", model: "gpt-4o-mini" }] } });
  await put("sources/standard", sourceDoc(T, "standard", S.standard));
  await put("channels/tg", { kind: "telegram", base_url: prov.url, credentials: { bot_token: tokens.telegram } });
  const auth = { type: "oauth2", grant: "client_credentials", token_url: `${crm.url}/oauth/token`, client_id: "gateway", client_secret: CLIENT_SECRET };
  const endpoints = { get: { method: "GET", path: "/contacts/c1", response: { success_path: "ok", data_path: "contact" } } };
  await put("integrations/crm", { name: "CRM", base_url: `${crm.url}/api`, auth, endpoints });
  const refreshing = { ...auth, grant: "refresh_token", refresh_token: REFRESH_TOKEN };
  await put("integrations/crm-rt", { name: "CRM", base_url: `${crm.url}/api`, auth: refreshing, endpoints });
  // The first call refreshes with the configured token; the provider rotates it.
  await refreshedCall();
  assert.deepEqual(crm.refreshes, [REFRESH_TOKEN]);
  pk = (await gw.admin("POST", `${T}/widget-keys`)).body.key;
  const first = await widget();
  assert.equal(first.status, 200, first.text);
  oldConversation = first.headers.get("x-conversation-id");
});
after(async () => {
  await gw?.stop();
  await Promise.all([llm?.close(), crm?.close(), dest?.close(), prov?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const widget = (conversation_id) =>
  gw.request("POST", `/v1/widget/chat?key=${pk}`, { headers: { origin: ORIGIN, "x-visitor-id": "v-" + randomBytes(4).toString("hex") }, json: { message: "hi", ...(conversation_id ? { conversation_id } : {}) } });

/** One request of each kind that opens a secret; returns [kind, status, text] for each. */
async function round(i) {
  const hook = sample(T, S, "standard");
  const calls = {
    llm: gw.request("POST", "/v1/chat/completions", { key, json: { model: "default", messages: [{ role: "user", content: `hi ${i}` }] } }),
    webhook: gw.request("POST", `/v1/webhooks/${T}/standard`, { body: hook.body, headers: { "content-type": "application/json", ...hook.headers } }),
    channel: gw.request("POST", "/v1/channels/tg/messages", { key, json: { conversation_id: "123456789", type: "text", text: `m${i}` } }),
    integration: gw.request("POST", "/v1/integrations/crm/get", { key, json: { input: {}, options: { skip_cache: true } } }),
    widget: widget(oldConversation),
  };
  const out = [];
  for (const [kind, p] of Object.entries(calls)) {
    const r = await p;
    out.push([kind, r.status, r.text.slice(0, 200)]);
  }
  return out;
}

/** Rounds of requests, one after another, until `stop()`; resolves to every result. */
function load() {
  let stopped = false;
  const results = [];
  const done = (async () => {
    for (let i = 0; !stopped; i++) results.push(...(await round(i)));
    return results;
  })();
  return { stop: () => ((stopped = true), done) };
}

/**
 * A call of the refresh-token integration that needs a new access token (the provider revoked
 * its tokens): it succeeds only if the gateway sends the refresh token the provider last issued.
 */
async function refreshedCall() {
  crm.revokeAll();
  const refreshes = crm.refreshes.length;
  const latest = crm.issuedRefresh.at(-1) ?? REFRESH_TOKEN;
  const r = await gw.request("POST", "/v1/integrations/crm-rt/get", { key, json: { input: {}, options: { skip_cache: true } } });
  assert.equal(crm.refreshes.length, refreshes + 1, "one refresh");
  assert.equal(crm.refreshes.at(-1), latest, "the refresh token the provider rotated to, never a retired one");
  assert.equal(r.status, 200, r.text);
}

/** Restarts the worker on the same state with `bindings` for its master keys. */
async function deploy(bindings) {
  delete gw.options.bindings.MASTER_KEY;
  delete gw.options.bindings.MASTER_KEYS;
  Object.assign(gw.options.bindings, bindings);
  await gw.restart();
}

const survey = async () => {
  const r = await gw.request("GET", "/v1/admin/master-keys", { admin: true });
  assert.equal(r.status, 200, r.text);
  return r.body;
};

/** Every secret-holding record of the tenant, as the admin API shows it. */
async function redacted() {
  const paths = ["", "llm", "sources/standard", "channels/tg", "integrations/crm"];
  return Promise.all(paths.map(async (p) => (await gw.admin("GET", `${T}${p ? "/" + p : ""}`)).text));
}

test("a rotation under load: no request fails, and then every secret opens under the new key alone", { timeout: 120_000 }, async () => {
  const before = await survey();
  const oldId = before.current_key;
  assert.deepEqual(before.keys, [oldId]);
  const total = before.secrets[oldId];
  assert.ok(total >= 6, `the tenant's and the seed's secrets: ${JSON.stringify(before.secrets)}`);
  assert.equal(before.old_keys_removable, true, "one key: nothing else to remove");

  // Step 1: the new key first, the old one still accepted.
  await deploy({ MASTER_KEYS: `${NEW_KEY}, ${MASTER_KEY}` });
  const ring = await survey();
  const newId = ring.current_key;
  assert.notEqual(newId, oldId);
  assert.deepEqual(ring.keys, [newId, oldId]);
  assert.deepEqual(ring.secrets, { [oldId]: total });
  assert.equal(ring.old_keys_removable, false);

  // A conversation begun during the rotation is signed by the new key.
  const during = await widget();
  assert.equal(during.status, 200, during.text);

  // Step 2: re-seal while every kind of request keeps coming.
  const running = load();
  await new Promise((r) => setTimeout(r, 300));
  const pass = await gw.request("POST", "/v1/admin/master-keys/reseal", { admin: true });
  assert.equal(pass.status, 200, pass.text);
  assert.equal(pass.body.resealed, total);
  assert.deepEqual(pass.body.secrets, { [newId]: total });
  assert.deepEqual([pass.body.complete, pass.body.unreadable_count, pass.body.old_keys_removable], [true, 0, true]);
  await new Promise((r) => setTimeout(r, 300));
  const results = await running.stop();
  // The re-sealed integration still refreshes with the token its provider rotated to.
  await refreshedCall();
  const failed = results.filter(([, status]) => status !== 200);
  assert.deepEqual(failed, [], "no request failed during the rotation");
  for (const kind of ["llm", "webhook", "channel", "integration", "widget"])
    assert.ok(results.filter(([k]) => k === kind).length >= 2, `${kind} requests ran throughout`);
  // The scheduled upkeep also re-seals during a rotation; now it finds nothing left.
  await (await gw.mf.getWorker()).scheduled({ cron: "*/5 * * * *" });
  const job = await gw.waitForLog((m) => m.includes('"upkeep":"secrets_resealed"'));
  assert.ok(job, "the upkeep ran its reseal job");
  assert.match(job.message, /"resealed":0/);
  assert.match(job.message, /"old_keys_removable":true/);
  // The run rewrote no tenant document: the seeded legacy destinations are sealed as they were.

  // Step 3: the old key removed. Everything opens under the new key alone.
  await deploy({ MASTER_KEYS: NEW_KEY });
  const afterwards = await survey();
  assert.deepEqual(afterwards.keys, [newId]);
  assert.deepEqual(afterwards.secrets, { [newId]: total });
  assert.equal(afterwards.unreadable_count, 0);
  for (const doc of await redacted()) assert.ok(!doc.includes('"opens":false'), doc);
  const delivered = dest.delivered.size;
  const last = await round("after");
  const [, widgetStatus] = last.find(([k]) => k === "widget");
  assert.deepEqual(last.filter(([k, s]) => k !== "widget" && s !== 200), []);
  // The rotated refresh token was sealed again under the new key: it still opens, and is sent.
  await refreshedCall();
  assert.equal(crm.refreshes.filter((t) => t === REFRESH_TOKEN).length, 1, "the configured token was sent once, first");
  for (const t of crm.issuedRefresh) planted.add(t);
  // The destination verifies the signature made with the re-sealed destination secret.
  await dest.until(() => dest.delivered.size > delivered, 10_000, "a delivery after the rotation");
  // An id the retired key signed is no longer one this gateway issues (the widget then starts a
  // new conversation: widget-browser.test.mjs); ids signed during the rotation still are.
  assert.equal(widgetStatus, 400);
  assert.equal((await widget(during.headers.get("x-conversation-id"))).status, 200);
});

test("a resumed pass starts after the tenant it names; a bad cursor is a 400", async () => {
  const r = await gw.request("POST", `/v1/admin/master-keys/reseal?after=${T}`, { admin: true });
  assert.equal(r.status, 200, r.text);
  assert.ok(r.body.tenants < r.body.of, `only the tenants after ${T}: ${r.body.tenants} of ${r.body.of}`);
  assert.equal(r.body.old_keys_removable, false, "a resumed pass proves nothing about the whole");
  const bad = await gw.request("POST", "/v1/admin/master-keys/reseal?after=../x", { admin: true });
  assert.equal(bad.status, 400);
  const tenantKey = await gw.request("GET", "/v1/admin/master-keys", { key });
  assert.ok([401, 403].includes(tenantKey.status), tenantKey.text);
});
