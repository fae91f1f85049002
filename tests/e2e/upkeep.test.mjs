// The scheduled upkeep (the cron trigger, fired here through Miniflare): dead letters past their
// retention are forgotten, younger ones kept; an OAuth token about to expire is replaced before
// any call needs it; each integration's health comes from its last call when one finished lately,
// else from its test call (never with `"health": {"interval_s": 0}`), recorded only when it
// changes and shown in the integration's GET and the usage report. Each run logs what each job did.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { startGateway, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startCrm } from "../mocks/crm.mjs";
import { sourceSecrets, sourceDoc } from "../samples.mjs";
import { sign } from "../signers.mjs";

const SECRET = "whsec_" + randomBytes(32).toString("base64");
const CLIENT_SECRET = "client-" + randomBytes(12).toString("hex");
const S = sourceSecrets();
for (const s of [SECRET, CLIENT_SECRET, S.standard]) planted.add(s);
let gw, dest, crm, key;

before(async () => {
  gw = await startGateway({ seed: false, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1", DEAD_LETTER_RETENTION_SECONDS: "3" } });
  dest = await startDestination(SECRET);
  dest.behaviour = () => ({ status: 500 });
  crm = await startCrm({ clientId: "gateway", clientSecret: CLIENT_SECRET });
  ({ key } = await gw.tenant("keeper", { destination: { url: dest.url, secret: SECRET }, limits: { max_delivery_attempts: 1 } }));
  assert.equal((await gw.admin("PUT", "keeper/sources/shop", sourceDoc("keeper", "standard", S.standard))).status, 201);
});
after(async () => {
  await gw?.stop();
  await dest?.close();
  await crm?.close();
});

const letters = async () => (await gw.admin("GET", "keeper/dead-letters")).body.data;

test("the cron run forgets dead letters past their retention and keeps younger ones", async () => {
  const body = JSON.stringify({ type: "invoice.paid", data: { n: 1 } });
  const headers = sign.standard(S.standard, body, { id: "msg_" + randomBytes(6).toString("hex") });
  const r = await gw.request("POST", "/v1/webhooks/keeper/shop", { body, headers: { "content-type": "application/json", ...headers } });
  assert.ok(r.status < 300, r.text);
  for (let i = 0; i < 200 && (await letters()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await letters()).length, 1, "the event was dead-lettered");
  const worker = await gw.mf.getWorker();
  await worker.scheduled({ cron: "*/5 * * * *" });
  assert.equal((await letters()).length, 1, "a young letter is kept");
  await new Promise((r) => setTimeout(r, 3200));
  await worker.scheduled({ cron: "*/5 * * * *" });
  assert.equal((await letters()).length, 0, "an old letter is forgotten");
  const runs = gw.logs.filter((l) => l.message.includes('"upkeep":"dead_letters_expired"')).map((l) => JSON.parse(l.message));
  assert.equal(runs.length, 2);
  assert.deepEqual(runs.map((r) => [r.report.expired, r.report.complete]), [[0, true], [1, true]]);
});

/** The job's report in the last upkeep log line of `job`. */
const lastRun = (job) => {
  const lines = gw.logs.filter((l) => l.message.includes(`"upkeep":"${job}"`));
  return lines.length ? JSON.parse(lines.at(-1).message).report : undefined;
};

test("the cron run replaces an OAuth token before it expires, and takes each integration's health from its calls or its test", async () => {
  const auth = { type: "oauth2", grant: "client_credentials", token_url: `${crm.url}/oauth/token`, client_id: "gateway", client_secret: CLIENT_SECRET };
  const put = async (p, doc) => assert.equal((await gw.admin("PUT", `keeper/integrations/${p}`, doc)).status, 201, p);
  await put("crm", { name: "CRM", base_url: `${crm.url}/api`, auth, endpoints: { contact: { method: "GET", path: "/contacts/c1" }, health: { method: "GET", path: "/health" } }, test: { endpoint: "health", input: {} } });
  await put("down", { name: "Down", base_url: `${crm.url}/api`, auth, retry: { max_retries: 0 }, endpoints: { ping: { method: "GET", path: "/down" } }, test: { endpoint: "ping", input: {} } });
  // Its test is never run: nothing calls it, so it has no health.
  await put("quiet", { name: "Quiet", base_url: `${crm.url}/api`, auth, health: { interval_s: 0 }, endpoints: { one: { method: "GET", path: "/contacts/quiet" } }, test: { endpoint: "one", input: {} } });
  const bad = await gw.admin("PUT", "keeper/integrations/eager", { name: "Eager", base_url: `${crm.url}/api`, health: { interval_s: 30 }, endpoints: { one: { method: "GET", path: "/health" } } });
  assert.equal(bad.status, 422);
  assert.match(bad.body.error.message, /`health.interval_s` must be between 60 and 604800 seconds, or 0/);
  // A token issued for 400 s: usable for 340, inside the run's ten-minute horizon.
  crm.expiresIn = 400;
  const call = await gw.request("POST", "/v1/integrations/crm/contact", { key, json: { input: {} } });
  assert.equal(call.status, 200, call.text);
  const tokens = await gw.mf.getKVNamespace("TOKENS");
  const held = async () => {
    const { keys } = await tokens.list({ prefix: "oauth:keeper:crm:" });
    assert.equal(keys.length, 1);
    return JSON.parse(await tokens.get(keys[0].name));
  };
  const before = await held();
  // Held sealed: the token itself is nowhere in KV.
  assert.deepEqual(Object.keys(before).sort(), ["sealed", "usable_until_s"]);
  assert.ok(!before.sealed.includes("tok-1"));

  crm.expiresIn = 3600;
  const worker = await gw.mf.getWorker();
  await worker.scheduled({ cron: "*/5 * * * *" });
  const refreshed = lastRun("oauth_tokens_refreshed");
  assert.deepEqual([refreshed.refreshed, refreshed.failed, refreshed.complete], [1, [], true]);
  const after = await held();
  assert.notEqual(after.sealed, before.sealed, "a new token is held");
  assert.ok(after.usable_until_s > before.usable_until_s + 3000);
  assert.ok(!after.sealed.includes("tok-2"));
  // The CRM's call a moment ago speaks for it: its test call is not spent. Nothing spoke for
  // `down`: its test runs. `quiet` is never tested.
  const checked = lastRun("integrations_checked");
  const counts = (c) => [c.tested, c.from_calls, c.skipped, c.recorded];
  assert.deepEqual(counts(checked), [1, 1, 1, 2]);
  assert.deepEqual([checked.healthy, checked.unhealthy], [1, ["keeper/down"]]);
  assert.deepEqual([crm.calls["/api/health"], crm.calls["/api/down"], crm.calls["/api/contacts/quiet"]], [undefined, 1, undefined]);

  const health = async (id) => (await gw.request("GET", `/v1/integrations/${id}`, { key })).body.health;
  const down = await health("down");
  assert.deepEqual([down.ok, down.from, down.status_code], [false, "test", 500]);
  assert.ok(Math.abs(down.checked_at - Date.now() / 1000) < 60);
  const fromCalls = await health("crm");
  assert.deepEqual([fromCalls.ok, fromCalls.from], [true, "calls"]);
  assert.ok(Math.abs(fromCalls.last_call_at - Date.now() / 1000) < 60);
  assert.equal(await health("quiet"), null);
  const usage = await gw.request("GET", "/v1/usage", { key });
  assert.deepEqual(usage.body.integrations_health.map((h) => [h.integration, h.ok]), [["crm", true], ["down", false]]);

  // A token good past the horizon is left alone; the next call needs no token request, and
  // uses the new token (the old one is revoked).
  crm.valid.delete("tok-1");
  const requests = crm.tokenRequests;
  await worker.scheduled({ cron: "*/5 * * * *" });
  const again = lastRun("oauth_tokens_refreshed");
  assert.deepEqual([again.refreshed, again.fresh], [0, 2]);
  // Five minutes have not passed: `down`'s test stands and is not run again; the CRM's call
  // still speaks; nothing changed, so nothing is written.
  assert.deepEqual(counts(lastRun("integrations_checked")), [0, 1, 2, 0]);
  assert.equal(crm.calls["/api/down"], 1);
  assert.deepEqual(await health("down"), down);
  assert.equal((await gw.request("POST", "/v1/integrations/crm/contact", { key, json: { input: {} } })).status, 200);
  assert.equal(crm.tokenRequests, requests);
  // A deleted integration's health goes with it.
  assert.equal((await gw.request("DELETE", "/v1/integrations/down", { key })).status, 204);
  const left = await gw.request("GET", "/v1/usage", { key });
  assert.deepEqual(left.body.integrations_health.map((h) => h.integration), ["crm"]);
});
