// "Connect" (issue #39) end to end: a tenant's user connects a marketplace integration through the
// OAuth 2.0 authorization-code flow with PKCE, against provider-shaped authorization servers that
// refuse what the real ones refuse (tests/mocks/authorization_servers.mjs). Connect, call, refresh,
// rotation, invalid_grant then the integration.disconnected event, reconnect, disconnect with
// revocation; Salesforce's instance_url, Shopify's HMAC, Zoho's data centre, Jira's cloud id; and
// the attacks: a forged or replayed state, a code from another attempt, an unregistered
// return_url, a denied consent. Nothing is stored on a refusal, and no token or secret is shown.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { randomBytes, createHmac } from "node:crypto";
import { startGateway, planted, assertError, until, ROOT, MASTER_KEY } from "../harness.mjs";
import { startAuthorizationServers, consent, s256 } from "../mocks/authorization_servers.mjs";
import { startDestination } from "../mocks/destination.mjs";

const T = "acme";
const RETURN = "https://app.acme.example/settings/integrations";
const PROVIDERS = ["salesforce", "shopify", "zoho-crm", "jira", "hubspot", "zendesk", "calendly"];
const secret = (prefix) => {
  const s = prefix + randomBytes(12).toString("hex");
  planted.add(s);
  return s;
};
const templates = Object.fromEntries(
  readdirSync(path.join(ROOT, "kv-seed", "templates")).map((f) => {
    const t = JSON.parse(readFileSync(path.join(ROOT, "kv-seed", "templates", f), "utf8"));
    return [t.id, t];
  }),
);
/** Every token and code the stand-ins issued: none may reach a gateway answer or a delivery. */
const issued = [];
let gw, as, dest, key, CALLBACK;
const apps = {};

/**
 * The shipped template, talking to the stand-ins: every `https://host` origin in its base_url and
 * its `connect` block (authorize_url, token_url, revoke_url, lookup.url, defaults, any other)
 * becomes `{stand-in}/{template}/host`, as `standIn` in templates.test.mjs does for the API, and a
 * pattern a told value must match (`^https://...`) takes the stand-in's origin for `https://`.
 */
function standIn(template, url) {
  const t = structuredClone(template);
  const origin = (u) => u.replace(/^https:\/\/([^/]+)/, `${url}/${t.id}/$1`);
  const here = `${url}/${t.id}/`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const rewrite = (v) => (v.startsWith("https://") ? origin(v) : v.startsWith("^https://") ? `^(?:https://|${here})${v.slice("^https://".length)}` : v);
  const walk = (v) => (typeof v === "string" ? rewrite(v) : Array.isArray(v) ? v.map(walk) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)])) : v);
  t.integration.base_url = origin(t.integration.base_url);
  if (t.integration.auth?.token_url) t.integration.auth.token_url = origin(t.integration.auth.token_url);
  if (t.connect) t.connect = walk(t.connect);
  for (const rule of Object.values(t.settings ?? {})) if (rule.pattern) rule.pattern = rewrite(rule.pattern);
  return t;
}

before(async () => {
  gw = await startGateway();
  as = await startAuthorizationServers({ plant: (s) => (planted.add(s), issued.push(s)) });
  const whsec = "whsec_" + randomBytes(32).toString("base64");
  planted.add(whsec);
  dest = await startDestination(whsec);
  ({ key } = await gw.tenant(T, { destination: { url: dest.url, secret: whsec }, connect_return_urls: [RETURN] }));
  const kv = await gw.mf.getKVNamespace("CONFIG");
  for (const id of PROVIDERS) await kv.put(`template:${id}`, JSON.stringify(standIn(templates[id], as.url)));
  CALLBACK = `${gw.url.origin}/v1/connect/callback`;
  // The tenant's own OAuth app for each provider, registered at the provider with the callback
  // (the operator's apps are the last test's).
  for (const id of PROVIDERS) {
    apps[id] = { client_id: `${T}-${id}-app`, client_secret: secret(`${id}-secret-`), redirect_uris: [CALLBACK] };
    as.register(id, apps[id]);
    const r = await gw.admin("PUT", `${T}/oauth-apps/${id}`, { client_id: apps[id].client_id, client_secret: apps[id].client_secret, redirect_uri: CALLBACK });
    assert.ok([200, 201].includes(r.status), `${id} app: ${r.text}`);
  }
});

after(async () => {
  // CONNECT_DEBUG=1 prints what the stand-ins saw (no secrets: tokens and codes are cut short).
  if (process.env.CONNECT_DEBUG) for (const l of as?.log ?? []) console.log(JSON.stringify(l, (k, v) => (typeof v === "string" && v.length > 12 && issued.includes(v) ? v.slice(0, 6) + "…" : v)));
  try {
    await gw?.stop();
  } finally {
    await as?.close();
    await dest?.close();
  }
});

const startConnect = (id, body = {}) => gw.request("POST", `/v1/integrations/${id}/connect`, { key, json: { return_url: RETURN, ...body } });
const call = (id, endpoint, input) => gw.request("POST", `/v1/integrations/${id}/${endpoint}`, { key, json: { input } });
const connection = async (id) => (await gw.request("GET", `/v1/integrations/${id}`, { key })).body?.connection;
/** The provider's redirect arriving at the gateway (a browser following it): the answer, not followed. */
async function arrive(location) {
  const res = await fetch(location, { redirect: "manual" });
  const text = await res.text();
  return { status: res.status, location: res.headers.get("location"), text, contentType: res.headers.get("content-type") };
}
/** Where the gateway sent the user back: `{connect, integration, reason}` on the registered return URL. */
function returned(r) {
  assert.equal(r.status, 302, `callback: ${r.status} ${r.text}`);
  const u = new URL(r.location);
  assert.equal(u.origin + u.pathname, RETURN);
  return Object.fromEntries(u.searchParams);
}
/** Connect `id` all the way: the connect answer, the provider's consent, the callback's redirect. */
async function connectFlow(id, body, { allow = true, tamper = (loc) => loc } = {}) {
  const c = await startConnect(id, body);
  assert.equal(c.status, 200, `connect ${id}: ${c.text}`);
  const loc = tamper(await consent(c.body.authorization_url, { allow }));
  assert.ok(loc.startsWith(CALLBACK + "?"), `the provider sends the user to the gateway's callback: ${loc}`);
  return { c, loc, back: returned(await arrive(loc)) };
}
/** Nothing kept for `id` after a refusal: no connection shows, and its calls are not made with a token. */
async function assertNotConnected(id) {
  const got = await gw.request("GET", `/v1/integrations/${id}`, { key });
  assert.ok(got.status === 404 || got.body?.connection?.status !== "connected", `${id} shows no connection: ${got.text}`);
}
const tokenLeft = (text) => issued.filter((t) => text.includes(t));

test("Salesforce: connect with PKCE, calls at the instance_url it returned, refresh with rotation, invalid_grant disconnects with an event, reconnect, disconnect revokes", async () => {
  const { c, back } = await connectFlow("sf", { template: "salesforce", settings: {} });
  assert.equal(c.body.integration, "sf");
  assert.ok(c.body.expires_at > Date.now() / 1000, `expires_at ${c.body.expires_at}`);
  const auth = new URL(c.body.authorization_url);
  assert.equal(auth.origin + auth.pathname, `${as.url}/salesforce/login.salesforce.com/services/oauth2/authorize`);
  const q = auth.searchParams;
  assert.deepEqual([q.get("response_type"), q.get("client_id"), q.get("redirect_uri"), q.get("code_challenge_method")], ["code", apps.salesforce.client_id, CALLBACK, "S256"]);
  assert.deepEqual(back, { connect: "connected", integration: "sf" });
  // The verifier sent with the code is the one behind the challenge (the stand-in refuses otherwise).
  const exchange = as.tokenRequests("salesforce").at(-1);
  assert.deepEqual([exchange.grant, exchange.status, s256(exchange.code_verifier)], ["authorization_code", 200, q.get("code_challenge")]);

  const conn = await connection("sf");
  assert.equal(conn.status, "connected");
  assert.deepEqual([conn.account, conn.app], [`${as.url}/salesforce/login.salesforce.com/id/00D5g000004XyZAEAY/0055g00000AbCdEAAV`, "tenant"], "who granted it: the token answer's id");
  assert.deepEqual([...conn.scopes].sort(), ["api", "refresh_token"]);
  assert.ok(conn.connected_at, "connected_at");

  const soql = { soql: "SELECT Id FROM Case LIMIT 1" };
  const r = await call("sf", "soql_query", soql);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.body.data.map((x) => x.Id), ["5003000000D8cuIQAR"]);
  assert.equal(as.log.filter((l) => l.endpoint === "api" && l.provider === "salesforce").at(-1).host, "acme.my.salesforce.com", "the API host is the instance_url");

  // The access token dies: the gateway refreshes with the refresh token it got, then with the rotated one.
  const firstRefresh = as.liveRefreshTokens("salesforce");
  assert.equal(firstRefresh.length, 1);
  as.expireAccess("salesforce");
  assert.equal((await call("sf", "soql_query", soql)).status, 200);
  const rotated = as.liveRefreshTokens("salesforce");
  as.expireAccess("salesforce");
  assert.equal((await call("sf", "soql_query", soql)).status, 200);
  const refreshes = as.tokenRequests("salesforce").filter((l) => l.grant === "refresh_token");
  assert.deepEqual(refreshes.map((l) => [l.refresh_token, l.status]), [[firstRefresh[0], 200], [rotated[0], 200]], "the rotated token sent, never the retired one");

  // The refresh token is refused: disconnected, and the tenant is told.
  as.expireRefresh("salesforce");
  as.expireAccess("salesforce");
  const failed = await call("sf", "soql_query", soql);
  assert.notEqual(failed.status, 200, failed.text);
  assert.equal(as.tokenRequests("salesforce").at(-1).error, "invalid_grant");
  assert.deepEqual([(await connection("sf")).status, (await connection("sf")).reason], ["disconnected", "invalid_grant"]);
  let event;
  await until(() => (event = [...dest.delivered.values()].flat().find((e) => e.type === "integration.disconnected" && JSON.stringify(e).includes('"sf"'))), 20_000, "integration.disconnected");
  assert.deepEqual(tokenLeft(JSON.stringify(event)), [], "the event shows no token");

  // Reconnect: neither template nor settings.
  const again = await connectFlow("sf", {});
  assert.deepEqual(again.back, { connect: "connected", integration: "sf" });
  assert.equal((await connection("sf")).status, "connected");
  assert.equal((await call("sf", "soql_query", soql)).status, 200);

  // Disconnect: revoked at the provider (RFC 7009), tokens forgotten.
  const live = as.liveRefreshTokens("salesforce");
  assert.equal(live.length, 1);
  const atDelete = as.log.length;
  const del = await gw.request("DELETE", "/v1/integrations/sf/connection", { key });
  assert.equal(del.status, 204, del.text);
  const revoked = as.log.slice(atDelete).filter((l) => l.provider === "salesforce" && l.endpoint === "revoke");
  assert.ok(revoked.some((l) => l.token === live[0] && l.status === 200), `the refresh token was revoked: ${JSON.stringify(revoked.map((l) => l.status))}`);
  assert.deepEqual(as.liveRefreshTokens("salesforce"), []);
  assert.deepEqual(as.liveAccessTokens("salesforce"), []);
  await assertNotConnected("sf");
  const mark = as.log.length;
  assert.notEqual((await call("sf", "soql_query", soql)).status, 200);
  assert.equal(as.log.slice(mark).filter((l) => l.endpoint === "api").length, 0, "no call made without a connection");
});

test("Shopify: the shop from the settings, the callback's HMAC checked (a tampered one stores nothing), an offline token", async () => {
  // A callback whose parameters were changed after Shopify signed them.
  const tampered = await connectFlow("shop-bad", { template: "shopify", settings: { shop: "acme-store" } }, { tamper: (loc) => loc.replace(/timestamp=(\d+)/, (_, t) => `timestamp=${Number(t) + 1}`) });
  assert.deepEqual(tampered.back, { connect: "failed", reason: "unverified", integration: "shop-bad" });
  assert.equal(as.tokenRequests("shopify").length, 0, "a callback that fails its HMAC exchanges no code");
  await assertNotConnected("shop-bad");

  const { c, back } = await connectFlow("shop", { template: "shopify", settings: { shop: "acme-store" } });
  assert.equal(new URL(c.body.authorization_url).pathname, "/shopify/acme-store.myshopify.com/admin/oauth/authorize");
  assert.deepEqual(back, { connect: "connected", integration: "shop" });
  assert.equal((await connection("shop")).account, "acme-store.myshopify.com");
  const r = await call("shop", "order_by_number", { order_number: "#1001" });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.number, "#1001");
  assert.equal(as.log.filter((l) => l.endpoint === "api" && l.provider === "shopify").at(-1).host, "acme-store.myshopify.com");
});

test("Zoho: the code exchanged at the user's data centre (eu), the API in that centre", async () => {
  const { c, back } = await connectFlow("zoho", { template: "zoho-crm", settings: {} });
  assert.equal(new URL(c.body.authorization_url).searchParams.get("access_type"), "offline");
  assert.deepEqual(back, { connect: "connected", integration: "zoho" });
  assert.deepEqual(as.tokenRequests("zoho-crm").map((l) => [l.host, l.grant, l.status]), [["accounts.zoho.eu", "authorization_code", 200]]);
  const r = await call("zoho", "find_contact", { email: "ada@example.com" });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.last_name, "Lovelace");
  assert.equal(as.log.filter((l) => l.endpoint === "api" && l.provider === "zoho-crm").at(-1).host, "www.zohoapis.eu");
});

test("Zoho: the user removed the app; Zoho's refusal of the refresh (200 with error invalid_code) disconnects", async () => {
  assert.equal((await connection("zoho"))?.status, "connected");
  as.revokeAll("zoho-crm");
  assert.notEqual((await call("zoho", "find_contact", { email: "ada@example.com" })).status, 200);
  assert.deepEqual(as.tokenRequests("zoho-crm").at(-1).grant, "refresh_token");
  assert.equal((await connection("zoho")).status, "disconnected");
});

test("Jira: audience and consent asked, the cloud id from accessible resources, the API through api.atlassian.com", async () => {
  const { c, back } = await connectFlow("jira", { template: "jira", settings: {} });
  const q = new URL(c.body.authorization_url).searchParams;
  assert.deepEqual([q.get("audience"), q.get("prompt")], ["api.atlassian.com", "consent"]);
  assert.deepEqual(back, { connect: "connected", integration: "jira" });
  assert.equal((await connection("jira")).account, "https://acme.atlassian.net", "the site from accessible resources");
  const r = await call("jira", "get_issue", { issue_key: "SUP-7" });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.data.summary, "Refund not received");
  const apiCalls = as.log.filter((l) => l.endpoint === "api" && l.provider === "jira");
  assert.ok(apiCalls.some((l) => l.path === "/oauth/token/accessible-resources"), "the cloud id was looked up");
  assert.match(apiCalls.at(-1).path, /^\/ex\/jira\/11223344-a1b2-3b33-c444-def123456789\/rest\/api\/3\/issue\/SUP-7$/);
});

test("Jira: refreshes as JSON (Atlassian's token requests), each sending the refresh token the last one returned; a 403 invalid_grant disconnects", async () => {
  assert.equal((await connection("jira"))?.status, "connected");
  // Two refreshes: each sends the refresh token the previous one returned.
  const mine = () => as.tokenRequests("jira").filter((l) => l.client_id === apps.jira.client_id);
  const sent = [];
  for (let i = 0; i < 2; i++) {
    const live = as.liveRefreshTokens("jira").filter((t) => !sent.includes(t));
    as.expireAccess("jira");
    assert.equal((await call("jira", "get_issue", { issue_key: "SUP-7" })).status, 200);
    const last = mine().at(-1);
    assert.deepEqual([last.grant, last.status], ["refresh_token", 200]);
    assert.ok(live.includes(last.refresh_token), "a live refresh token was sent");
    sent.push(last.refresh_token);
  }
  assert.notEqual(sent[0], sent[1], "rotated");
  // Atlassian refuses a dead refresh token with 403 (invalid_grant in the body): disconnected too.
  as.expireRefresh("jira");
  as.expireAccess("jira");
  assert.notEqual((await call("jira", "get_issue", { issue_key: "SUP-7" })).status, 200);
  assert.deepEqual([mine().at(-1).status, mine().at(-1).error], [403, "invalid_grant"]);
  assert.equal((await connection("jira")).status, "disconnected");
});

/** Connects `id` from `template` and makes one call through it, against the stand-in's API. */
async function connectAndCall(id, template, settings, endpoint, input) {
  const { back } = await connectFlow(id, { template, settings });
  assert.deepEqual(back, { connect: "connected", integration: id }, template);
  const r = await call(id, endpoint, input);
  assert.equal(r.status, 200, `${template}: ${r.text}`);
  assert.equal(as.log.filter((l) => l.endpoint === "api" && l.provider === template).at(-1)?.status, 200, template);
}

test("HubSpot: connect and call", async () => {
  await connectAndCall("hs", "hubspot", {}, "get_contact", { contact_id: "512" });
});

test("Zendesk: connect (PKCE, the subdomain from the settings; its answer carries a refresh token too) and call", async () => {
  await connectAndCall("zd", "zendesk", { subdomain: "acme" }, "get_ticket", { ticket_id: 35436 });
  assert.ok(as.tokenRequests("zendesk").at(-1).code_verifier, "Zendesk takes PKCE");
});

test("Calendly: connect (the owner told), call, disconnect revokes at its RFC 7009 endpoint", async () => {
  await connectAndCall("cal", "calendly", { event_type_uri: "https://api.calendly.com/event_types/BBBBBBBBBBBBBBBB" }, "me", {});
  assert.equal((await connection("cal")).account, "https://api.calendly.com/users/AAAAAAAAAAAAAAAA", "Calendly's owner");
  const live = as.liveRefreshTokens("calendly");
  assert.equal((await gw.request("DELETE", "/v1/integrations/cal/connection", { key })).status, 204);
  assert.ok(as.log.some((l) => l.provider === "calendly" && l.endpoint === "revoke" && live.includes(l.token) && l.status === 200), "revoked at Calendly");
  assert.deepEqual(as.liveRefreshTokens("calendly"), []);
});

test("HubSpot: its refusal of a refresh (400 with status BAD_REFRESH_TOKEN) disconnects", async () => {
  assert.equal((await connection("hs"))?.status, "connected");
  as.revokeAll("hubspot");
  // Another contact than before: get_contact's answers are cached.
  const r = await call("hs", "get_contact", { contact_id: "513" });
  assert.notEqual(r.status, 200, r.text);
  assert.equal(as.tokenRequests("hubspot").at(-1).grant, "refresh_token");
  assert.equal((await connection("hs")).status, "disconnected");
});

/**
 * `state` as it would be had its time run out: its content with `expires_at` in the past, signed
 * again as the gateway signs it (core::integration::connect::state: HMAC-SHA256 under the master
 * key's id key). The test plays the clock; everything else in it is the gateway's own.
 */
function expired(state) {
  const [payload] = state.split(".");
  const content = JSON.parse(Buffer.from(payload, "base64url").toString());
  assert.ok(typeof content.expires_at === "number", "the state's content has expires_at");
  const next = Buffer.from(JSON.stringify({ ...content, expires_at: Math.floor(Date.now() / 1000) - 1 })).toString("base64url");
  const idKey = createHmac("sha256", Buffer.from(MASTER_KEY, "hex")).update("edge-gateway/ids/v1").digest();
  const tag = createHmac("sha256", idKey).update("connect-state\x1f").update(next).digest().subarray(0, 16).toString("hex");
  return `${next}.${tag}`;
}

test("a state whose time ran out: back to the return URL with reason expired, no code exchanged, nothing kept", async () => {
  const c = await startConnect("sf-late", { template: "salesforce", settings: {} });
  assert.equal(c.status, 200, c.text);
  const loc = new URL(await consent(c.body.authorization_url));
  const exchanges = as.tokenRequests("salesforce").length;
  const late = returned(await arrive(`${CALLBACK}?code=${loc.searchParams.get("code")}&state=${encodeURIComponent(expired(loc.searchParams.get("state")))}`));
  assert.deepEqual(late, { connect: "failed", reason: "expired", integration: "sf-late" });
  assert.equal(as.tokenRequests("salesforce").length, exchanges);
  await assertNotConnected("sf-late");
});

test("the connect answer holds the hosted connect_url beside the authorization_url", async () => {
  const c = await startConnect("sf-url", { template: "salesforce", settings: {} });
  assert.equal(c.status, 200, c.text);
  assert.deepEqual(Object.keys(c.body).sort(), ["authorization_url", "connect_url", "expires_at", "integration"]);
});

test("refused: a forged or tampered state (400, no redirect), a replayed callback, a code from another attempt, a denied consent, an unregistered return_url", async () => {
  // A state that is not ours: 400 JSON, no redirect.
  for (const state of ["garbage", "eyJub25jZSI6IngifQ.00000000000000000000000000000000", ""]) {
    const r = await arrive(`${CALLBACK}?code=abc&state=${encodeURIComponent(state)}`);
    assert.equal(r.status, 400, `${state}: ${r.text}`);
    assert.equal(r.location, null);
    assert.equal(r.contentType, "application/json");
  }
  const c = await startConnect("sf-forged", { template: "salesforce", settings: {} });
  assert.equal(c.status, 200, c.text);
  const real = new URL(await consent(c.body.authorization_url));
  const state = real.searchParams.get("state");
  const flipped = state.slice(0, -1) + (state.at(-1) === "0" ? "1" : "0");
  const forged = await arrive(`${CALLBACK}?code=${real.searchParams.get("code")}&state=${encodeURIComponent(flipped)}`);
  assert.deepEqual([forged.status, forged.location], [400, null]);
  await assertNotConnected("sf-forged");

  // A code from another integration's attempt: exchanged with this attempt's verifier, the provider refuses it.
  const a = await startConnect("sf-a", { template: "salesforce", settings: {} });
  const b = await startConnect("sf-b", { template: "salesforce", settings: {} });
  const locA = new URL(await consent(a.body.authorization_url));
  const locB = new URL(await consent(b.body.authorization_url));
  const swapped = returned(await arrive(`${CALLBACK}?code=${locA.searchParams.get("code")}&state=${encodeURIComponent(locB.searchParams.get("state"))}`));
  assert.deepEqual(swapped, { connect: "failed", reason: "exchange_failed", integration: "sf-b" });
  assert.ok(["invalid_request", "invalid_grant"].includes(as.tokenRequests("salesforce").at(-1).error), "the provider refused the verifier");
  await assertNotConnected("sf-b");
  await assertNotConnected("sf-a");

  // The callback replayed after it connected: refused, and the connection stays as it was.
  const first = returned(await arrive(locA.href));
  assert.deepEqual(first, { connect: "connected", integration: "sf-a" });
  const exchanges = as.tokenRequests("salesforce").length;
  const replay = returned(await arrive(locA.href));
  assert.deepEqual(replay, { connect: "failed", integration: "sf-a", reason: "replayed" });
  assert.equal(as.tokenRequests("salesforce").length, exchanges, "a replayed state exchanges nothing");
  assert.equal((await connection("sf-a")).status, "connected");

  // The user says no.
  const denied = await connectFlow("sf-deny", { template: "salesforce", settings: {} }, { allow: false });
  assert.deepEqual(denied.back, { connect: "failed", integration: "sf-deny", reason: "denied" });
  await assertNotConnected("sf-deny");

  // A return URL the tenant did not register: refused before anything starts.
  const logged = as.log.length;
  for (const url of ["https://evil.example/cb", `${RETURN}/x`, RETURN.replace("https", "http")]) {
    const r = await startConnect("sf-evil", { template: "salesforce", settings: {}, return_url: url });
    assertError(assert, r, 422, "validation_error");
  }
  assert.equal(as.log.length, logged, "nothing reached the provider");
  await assertNotConnected("sf-evil");
});

test("no token, code or secret in any answer of the gateway", async () => {
  for (const id of ["sf", "shop", "zoho", "jira", "sf-a"]) {
    const got = await gw.request("GET", `/v1/integrations/${id}`, { key });
    assert.deepEqual(tokenLeft(got.text), [], id);
  }
  for (const id of PROVIDERS) {
    const app = await gw.admin("GET", `${T}/oauth-apps/${id}`);
    assert.deepEqual([app.status, app.body?.client_secret], [200, { set: true }], app.text);
  }
  // The whole run's answers and log lines are checked by gw.stop() against `planted`, which holds
  // every token and code the stand-ins issued.
});

test("an operator's OAuth app serves the tenants without their own, its secret shown only as set; a tenant's own app wins over it", async () => {
  const operator = { client_id: "jira-operator-app", client_secret: secret("jira-operator-"), redirect_uris: [CALLBACK] };
  as.register("jira", operator);
  const put = await gw.request("PUT", "/v1/admin/oauth-apps/jira", { admin: true, json: { client_id: operator.client_id, client_secret: operator.client_secret, redirect_uri: CALLBACK } });
  assert.ok([200, 201].includes(put.status), put.text);
  const got = await gw.request("GET", "/v1/admin/oauth-apps/jira", { admin: true });
  assert.equal(got.status, 200, got.text);
  assert.deepEqual([got.body.client_id, got.body.client_secret, got.body.redirect_uri], [operator.client_id, { set: true }, CALLBACK]);

  // A tenant without an app of its own connects with the operator's.
  const beta = await gw.tenant("beta", { connect_return_urls: [RETURN] });
  const c = await gw.request("POST", "/v1/integrations/jira/connect", { key: beta.key, json: { template: "jira", settings: {}, return_url: RETURN } });
  assert.equal(c.status, 200, c.text);
  assert.equal(new URL(c.body.authorization_url).searchParams.get("client_id"), operator.client_id);
  const back = returned(await arrive(await consent(c.body.authorization_url)));
  assert.deepEqual(back, { connect: "connected", integration: "jira" });
  assert.equal(as.tokenRequests("jira").at(-1).client_id, operator.client_id, "the code was exchanged with the operator's app");
  const conn = (await gw.request("GET", "/v1/integrations/jira", { key: beta.key })).body?.connection;
  assert.deepEqual([conn?.status, conn?.app], ["connected", "operator"]);

  // The tenant with its own keeps using it.
  const own = await startConnect("jira-again", { template: "jira", settings: {} });
  assert.equal(new URL(own.body.authorization_url).searchParams.get("client_id"), apps.jira.client_id);
});

test("a disconnected Shopify connection (its token told, kept in the integration) makes no call; Zoho's disconnect revokes at the data centre the callback told", async () => {
  const { back } = await connectFlow("shop-gone", { template: "shopify", settings: { shop: "acme-store" } });
  assert.deepEqual(back, { connect: "connected", integration: "shop-gone" });
  assert.equal((await call("shop-gone", "order_by_number", { order_number: "#1001" })).status, 200);
  assert.equal((await gw.request("DELETE", "/v1/integrations/shop-gone/connection", { key })).status, 204);
  const mark = as.log.length;
  const refused = await call("shop-gone", "order_by_number", { order_number: "#1001" });
  assert.equal(refused.status, 409, refused.text);
  assert.match(refused.body.error.message, /disconnected: connect it again/);
  assert.equal(as.log.slice(mark).filter((l) => l.endpoint === "api").length, 0, "no call made with the told token");

  const zoho = await connectFlow("zoho-gone", { template: "zoho-crm", settings: {} });
  assert.deepEqual(zoho.back, { connect: "connected", integration: "zoho-gone" });
  const atDelete = as.log.length;
  assert.equal((await gw.request("DELETE", "/v1/integrations/zoho-gone/connection", { key })).status, 204);
  const revoked = as.log.slice(atDelete).filter((l) => l.provider === "zoho-crm" && l.endpoint === "revoke");
  assert.deepEqual(revoked.map((l) => [l.host, l.status]), [["accounts.zoho.eu", 200]]);
  assert.equal((await call("zoho-gone", "find_contact", { email: "ada@example.com" })).status, 409);
});
