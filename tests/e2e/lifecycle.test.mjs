// State that must not outlive, or cross, the lifetime of a tenant or an integration: an integration's
// cached results after it is installed again (with other credentials) or its tenant is created
// again under the same id; queued events and channel sends of a tenant deleted and created again
// before they were consumed; a deleted tenant's widget conversations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { startGateway, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startProviders, providerTokens } from "../mocks/providers.mjs";
import { sourceSecrets, sourceDoc, sample } from "../samples.mjs";

const KEYS = { a: "key-a-" + randomBytes(8).toString("hex"), b: "key-b-" + randomBytes(8).toString("hex") };
for (const k of Object.values(KEYS)) planted.add(k);

let gw, api;
before(async () => {
  // Conversations look at their tenant every second (a day by default).
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1", CONVERSATION_CHECK_SECONDS: "1" } });
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

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
const deleteTenant = async (t) => assert.equal((await gw.request("DELETE", `/v1/admin/tenants/${t}?confirm=${t}`, { admin: true })).status, 204);
/** The log line that says a queued message of an earlier tenant `t` was dropped. */
const dropped = (t, ms) => gw.waitForLog((m) => m.includes('"dropped"') && m.includes("created again") && m.includes(`"tenant":"${t}"`), ms);

test("an event queued before its tenant was deleted never reaches the destination of the tenant created again under its id", async () => {
  const T = "queue-phoenix";
  const S = sourceSecrets();
  const secrets = ["whsec_" + randomBytes(32).toString("base64"), "whsec_" + randomBytes(32).toString("base64")];
  for (const x of [S.github, ...secrets]) planted.add(x);
  const [first, second] = await Promise.all(secrets.map(startDestination));
  // The first tenant's destination asks for a retry in 3 s: the event waits in the queue.
  first.behaviour = () => ({ status: 503, headers: { "retry-after": "3" } });
  const setUp = async (dest) => {
    await gw.tenant(T, { destination: { url: dest.url, secret: dest.secret } });
    assert.equal((await gw.admin("PUT", `${T}/sources/github`, sourceDoc(T, "github", S.github))).status, 201);
  };
  try {
    await setUp(first);
    const s = sample(T, S, "github");
    const r = await gw.request("POST", `/v1/webhooks/${T}/github`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });
    assert.equal(r.status, 200, r.text);
    await first.until(() => first.attempts.length === 1, 10_000, "the first attempt");

    await deleteTenant(T);
    await setUp(second);
    const line = await dropped(T, 10_000);
    await sleep(500);
    assert.deepEqual(second.attempts, [], "the new tenant's destination received nothing");
    assert.equal(first.attempts.length, 1, "nor was the old one tried again");
    assert.ok(line, "a log line says the message was dropped");
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

test("a channel send queued for a retry before its tenant was deleted is not sent through the channel of the tenant created again", async () => {
  const T = "send-phoenix";
  const tokens = providerTokens();
  planted.add(tokens.telegram);
  const prov = await startProviders({ tokens });
  // Telegram's flood control on the first send: retry in 3 s.
  prov.behaviour = () => (prov.requests.length === 1 ? { status: 429, headers: { "retry-after": "3" }, body: { ok: false, error_code: 429, description: "Too Many Requests: retry after 3", parameters: { retry_after: 3 } } } : null);
  const setUp = async () => {
    const { key } = await gw.tenant(T);
    const ch = await gw.admin("PUT", `${T}/channels/tg`, { kind: "telegram", base_url: prov.url, credentials: { bot_token: tokens.telegram } });
    assert.equal(ch.status, 201, ch.text);
    return key;
  };
  try {
    const key = await setUp();
    const r = await gw.request("POST", "/v1/channels/tg/messages", { key, json: { conversation_id: "123456789", type: "text", text: "sent before the delete" } });
    assert.equal(r.status, 202, r.text);

    await deleteTenant(T);
    await setUp();
    const line = await dropped(T, 10_000);
    await sleep(500);
    assert.equal(prov.requests.length, 1, "the queued send went nowhere");
    assert.ok(line, "a log line says the send was dropped");
  } finally {
    await prov.close();
  }
});

test("a deleted tenant's conversations are erased; a live tenant's are kept; retention is a validated setting", async () => {
  const ORIGIN = "https://shop.example.com";
  const svc = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"reply":"noted"}');
    });
  });
  await new Promise((ok) => svc.listen(0, "127.0.0.1", ok));
  const conversations = await gw.mf.getDurableObjectNamespace("CONVERSATIONS");
  /** The turns a conversation's object holds, asked directly (as the gateway asks it). */
  const held = async (t, id) => {
    const stub = conversations.get(conversations.idFromName(`conv:${t}:${id}`));
    const r = await stub.fetch("https://do.internal/", { method: "POST", body: JSON.stringify({ get: null }) });
    return (await r.json()).turns.length;
  };
  const chat = async (t) => {
    await gw.tenant(t, { allowed_origins: [ORIGIN], assistant: { chat_url: `http://127.0.0.1:${svc.address().port}/chat` } });
    const pk = (await gw.admin("POST", `${t}/widget-keys`)).body.key;
    const r = await gw.request("POST", `/v1/widget/chat?key=${pk}`, { headers: { origin: ORIGIN, "x-visitor-id": "v1" }, json: { message: "remember me" } });
    assert.equal(r.status, 200, r.text);
    return r.headers.get("x-conversation-id");
  };
  try {
    const [gone, kept] = ["conv-gone", "conv-kept"];
    const [goneId, keptId] = [await chat(gone), await chat(kept)];
    assert.deepEqual([await held(gone, goneId), await held(kept, keptId)], [2, 2]);

    await deleteTenant(gone);
    let left = 2;
    for (let i = 0; i < 100 && left; i++) {
      await sleep(100);
      left = await held(gone, goneId);
    }
    assert.equal(left, 0, "the deleted tenant's conversation was erased");
    await sleep(1500); // the live tenant's conversation has looked at its tenant too
    assert.equal(await held(kept, keptId), 2, "checked against its tenant, and kept");

    // Retention: days since the last message, 1 to 365 (30 when unset).
    const retention = (days) => gw.admin("PUT", kept, { name: kept, allowed_origins: [ORIGIN], assistant: { conversation_retention_days: days } });
    for (const bad of [0, 366, "7"]) assert.equal((await retention(bad)).status, 422, `${bad}`);
    assert.equal((await retention(7)).status, 200);
  } finally {
    await new Promise((ok) => svc.close(ok));
  }
});
