// The authorization-server stand-ins (tests/mocks/authorization_servers.mjs) refuse what the real
// providers refuse, without a gateway: a test that passes against them proves the gateway did the
// flow right, not that the stand-in let anything through.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, createHmac } from "node:crypto";
import { startAuthorizationServers, consent, s256, shopifyHmac } from "../mocks/authorization_servers.mjs";

const CALLBACK = "http://127.0.0.1:1/v1/connect/callback";
const apps = {};
let as;

before(async () => {
  as = await startAuthorizationServers();
  for (const p of ["salesforce", "shopify", "zoho-crm", "jira", "hubspot", "zendesk", "calendly"]) {
    apps[p] = { client_id: `${p}-app`, client_secret: `${p}-secret-${randomBytes(8).toString("hex")}`, redirect_uris: [CALLBACK] };
    as.register(p, apps[p]);
  }
});
after(() => as?.close());

const at = (provider, host, path, query = {}) => `${as.url}/${provider}/${host}${path}?${new URLSearchParams(query)}`;
const verifier = () => randomBytes(32).toString("base64url");
/** Consent at `provider`'s authorize endpoint; the callback's parameters. */
async function grant(provider, host, path, extra = {}, opts) {
  const loc = await consent(at(provider, host, path, { client_id: apps[provider].client_id, redirect_uri: CALLBACK, response_type: "code", state: "st-1", ...extra }), opts);
  assert.ok(loc.startsWith(CALLBACK + "?"), loc);
  return new URL(loc).searchParams;
}
async function post(url, fields, { json = false, basic } = {}) {
  const headers = { "content-type": json ? "application/json" : "application/x-www-form-urlencoded" };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${basic.client_id}:${basic.client_secret}`).toString("base64")}`;
  const res = await fetch(url, { method: "POST", headers, body: json ? JSON.stringify(fields) : new URLSearchParams(fields).toString() });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}
const sfToken = (fields, opts) => post(at("salesforce", "login.salesforce.com", "/services/oauth2/token"), { client_id: apps.salesforce.client_id, client_secret: apps.salesforce.client_secret, redirect_uri: CALLBACK, ...fields }, opts);
const sfQuery = (token) => fetch(`${as.url}/salesforce/acme.my.salesforce.com/services/data/v60.0/query?q=SELECT+Id+FROM+Case`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);

test("the stand-ins' S256 and Shopify HMAC agree with the published examples (RFC 7636 Appendix B, Shopify's docs)", () => {
  assert.equal(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  const q = "code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823&timestamp=1337178173";
  assert.equal(shopifyHmac(q, "hush"), new URLSearchParams(q).get("hmac"));
});

test("Salesforce: PKCE checked, a code spent once (reusing it revokes its tokens), refresh rotation, revocation", async () => {
  const v = verifier();
  const cb = await grant("salesforce", "login.salesforce.com", "/services/oauth2/authorize", { scope: "api refresh_token", code_challenge: s256(v), code_challenge_method: "S256" });
  assert.equal(cb.get("state"), "st-1");
  const code = cb.get("code");
  assert.deepEqual((await sfToken({ grant_type: "authorization_code", code, code_verifier: verifier() })).body.error, "invalid_request", "wrong verifier");
  assert.equal((await sfToken({ grant_type: "authorization_code", code })).body.error, "invalid_grant", "missing verifier");
  assert.equal((await sfToken({ grant_type: "authorization_code", code, code_verifier: v, redirect_uri: CALLBACK + "x" })).body.error, "invalid_grant", "another redirect_uri");
  const bad = await sfToken({ grant_type: "authorization_code", code, code_verifier: v, client_secret: "nope" });
  assert.deepEqual([bad.status, bad.body.error], [400, "invalid_client"]);
  const ok = await sfToken({ grant_type: "authorization_code", code, code_verifier: v });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(Object.keys(ok.body).sort(), ["access_token", "id", "instance_url", "issued_at", "refresh_token", "scope", "signature", "token_type"], "no expires_in");
  assert.equal(ok.body.instance_url, `${as.url}/salesforce/acme.my.salesforce.com`);
  assert.equal(ok.body.signature, createHmac("sha256", apps.salesforce.client_secret).update(ok.body.id + ok.body.issued_at).digest("base64"));
  assert.equal(await sfQuery(ok.body.access_token), 200);
  assert.equal(await sfQuery("00Dforged"), 401);

  const r1 = await sfToken({ grant_type: "refresh_token", refresh_token: ok.body.refresh_token });
  assert.equal(r1.status, 200);
  assert.notEqual(r1.body.refresh_token, ok.body.refresh_token, "rotated");
  const reused = await sfToken({ grant_type: "refresh_token", refresh_token: ok.body.refresh_token });
  assert.deepEqual([reused.status, reused.body.error], [400, "invalid_grant"], "the rotated-away token");
  assert.equal(as.tokenRequests("salesforce").at(-1).refresh_token, ok.body.refresh_token, "the log shows what was sent");

  // Revoking the refresh token ends its access tokens too.
  const rev = await post(at("salesforce", "login.salesforce.com", "/services/oauth2/revoke"), { token: r1.body.refresh_token });
  assert.equal(rev.status, 200);
  assert.equal(await sfQuery(r1.body.access_token), 401);
  assert.equal((await sfToken({ grant_type: "refresh_token", refresh_token: r1.body.refresh_token })).body.error, "invalid_grant");

  // A code used twice: refused, and what it was exchanged for is revoked (RFC 6749 4.1.2).
  const v2 = verifier();
  const code2 = (await grant("salesforce", "login.salesforce.com", "/services/oauth2/authorize", { scope: "api", code_challenge: s256(v2), code_challenge_method: "S256" })).get("code");
  const first = await sfToken({ grant_type: "authorization_code", code: code2, code_verifier: v2 });
  assert.equal(first.body.refresh_token, undefined, "no refresh token without the refresh_token scope");
  assert.equal((await sfToken({ grant_type: "authorization_code", code: code2, code_verifier: v2 })).body.error, "invalid_grant");
  assert.equal(await sfQuery(first.body.access_token), 401);
});

test("authorize: an unregistered redirect_uri or client is never redirected to; plain PKCE refused; Deny answers access_denied", async () => {
  const page = await fetch(at("salesforce", "login.salesforce.com", "/services/oauth2/authorize", { client_id: apps.salesforce.client_id, redirect_uri: "https://evil.example/cb", response_type: "code" }), { redirect: "manual" });
  assert.equal(page.status, 400);
  assert.equal(page.headers.get("location"), null);
  const unknown = await fetch(at("salesforce", "login.salesforce.com", "/services/oauth2/authorize", { client_id: "other", redirect_uri: CALLBACK, response_type: "code" }), { redirect: "manual" });
  assert.equal(unknown.status, 400);
  const plain = await grant("calendly", "auth.calendly.com", "/oauth/authorize", { code_challenge: verifier(), code_challenge_method: "plain" });
  assert.deepEqual([plain.get("error"), plain.get("state")], ["invalid_request", "st-1"]);
  const denied = await grant("calendly", "auth.calendly.com", "/oauth/authorize", {}, { allow: false });
  assert.deepEqual(Object.fromEntries(denied), { error: "access_denied", state: "st-1" });
});

test("expiry and binding: a code older than 60 s, a code taken to another client, a verifier for a code without a challenge", async () => {
  const other = { client_id: "calendly-other", client_secret: "calendly-other-secret-0123", redirect_uris: [CALLBACK] };
  as.register("calendly", other);
  const url = at("calendly", "auth.calendly.com", "/oauth/token");
  const code = async () => (await grant("calendly", "auth.calendly.com", "/oauth/authorize")).get("code");
  // client_secret_basic: a wrong secret is 401.
  const wrong = await post(url, { grant_type: "authorization_code", code: await code(), redirect_uri: CALLBACK }, { basic: { ...apps.calendly, client_secret: "x" } });
  assert.deepEqual([wrong.status, wrong.body.error], [401, "invalid_client"]);
  assert.equal((await post(url, { grant_type: "authorization_code", code: await code(), redirect_uri: CALLBACK }, { basic: other })).body.error, "invalid_grant");
  assert.equal((await post(url, { grant_type: "authorization_code", code: await code(), redirect_uri: CALLBACK, code_verifier: verifier() }, { basic: apps.calendly })).body.error, "invalid_grant");
  const old = await code();
  as.advance(61_000);
  assert.equal((await post(url, { grant_type: "authorization_code", code: old, redirect_uri: CALLBACK }, { basic: apps.calendly })).body.error, "invalid_grant");
  const ok = await post(url, { grant_type: "authorization_code", code: await code(), redirect_uri: CALLBACK }, { basic: apps.calendly });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.owner, "https://api.calendly.com/users/AAAAAAAAAAAAAAAA");
  // The test control: the next refresh is refused.
  as.expireRefresh("calendly");
  assert.equal((await post(url, { grant_type: "refresh_token", refresh_token: ok.body.refresh_token }, { basic: apps.calendly })).body.error, "invalid_grant");
});

test("Shopify: the callback's hmac is the app secret's over the other parameters; a code is its shop's only", async () => {
  const shop = "acme-store.myshopify.com";
  const cb = await grant("shopify", shop, "/admin/oauth/authorize", { scope: "read_orders,write_orders", response_type: undefined });
  assert.deepEqual([...cb.keys()].sort(), ["code", "hmac", "host", "shop", "state", "timestamp"]);
  assert.equal(cb.get("shop"), shop);
  assert.equal(cb.get("hmac"), shopifyHmac(cb, apps.shopify.client_secret));
  const forged = new URLSearchParams(cb);
  forged.set("shop", "evil-store.myshopify.com");
  assert.notEqual(forged.get("hmac"), shopifyHmac(forged, apps.shopify.client_secret), "a changed parameter no longer verifies");
  const exchange = (host) => post(at("shopify", host, "/admin/oauth/access_token"), { client_id: apps.shopify.client_id, client_secret: apps.shopify.client_secret, code: cb.get("code") }, { json: true });
  assert.equal((await exchange("evil-store.myshopify.com")).status, 400);
  const ok = await exchange(shop);
  assert.deepEqual(Object.keys(ok.body).sort(), ["access_token", "scope"]);
  const orders = (host) => fetch(`${as.url}/shopify/${host}/admin/api/2024-10/orders.json?name=%231001&status=any`, { headers: { "x-shopify-access-token": ok.body.access_token } }).then((r) => r.status);
  assert.equal(await orders(shop), 200);
  assert.equal(await orders("evil-store.myshopify.com"), 401);
  assert.equal((await exchange(shop)).status, 400, "the code is spent");
});

test("Zoho: the code is exchanged at the user's data centre only (refusals answered 200); the API domain is that centre's", async () => {
  const cb = await grant("zoho-crm", "accounts.zoho.com", "/oauth/v2/auth", { scope: "ZohoCRM.modules.contacts.READ", access_type: "offline" });
  assert.deepEqual([cb.get("location"), cb.get("accounts-server")], ["eu", `${as.url}/zoho-crm/accounts.zoho.eu`]);
  const exchange = (host) => post(at("zoho-crm", host, "/oauth/v2/token"), { grant_type: "authorization_code", client_id: apps["zoho-crm"].client_id, client_secret: apps["zoho-crm"].client_secret, redirect_uri: CALLBACK, code: cb.get("code") });
  assert.deepEqual(await exchange("accounts.zoho.com"), { status: 200, body: { error: "invalid_code" } });
  const ok = await exchange("accounts.zoho.eu");
  assert.equal(ok.body.api_domain, `${as.url}/zoho-crm/www.zohoapis.eu`);
  const search = await fetch(`${ok.body.api_domain}/crm/v7/Contacts/search?email=ada@example.com`, { headers: { authorization: `Zoho-oauthtoken ${ok.body.access_token}` } });
  assert.equal(search.status, 200);
  const refreshed = await post(at("zoho-crm", "accounts.zoho.eu", "/oauth/v2/token"), { grant_type: "refresh_token", client_id: apps["zoho-crm"].client_id, client_secret: apps["zoho-crm"].client_secret, refresh_token: ok.body.refresh_token });
  assert.equal(refreshed.body.refresh_token, undefined, "Zoho does not rotate");
  assert.equal((await fetch(`${as.url}/zoho-crm/accounts.zoho.eu/oauth/v2/token/revoke?token=${ok.body.refresh_token}`, { method: "POST" })).status, 200);
  assert.equal((await post(at("zoho-crm", "accounts.zoho.eu", "/oauth/v2/token"), { grant_type: "refresh_token", client_id: apps["zoho-crm"].client_id, client_secret: apps["zoho-crm"].client_secret, refresh_token: ok.body.refresh_token })).body.error, "invalid_code");
});

test("Jira: audience required, a JSON token body, rotating refresh tokens refused with 403 once used; cloud id from accessible resources", async () => {
  const noAudience = await grant("jira", "auth.atlassian.com", "/authorize", { scope: "read:jira-work offline_access", prompt: "consent" });
  assert.equal(noAudience.get("error"), "invalid_request");
  const cb = await grant("jira", "auth.atlassian.com", "/authorize", { scope: "read:jira-work offline_access", audience: "api.atlassian.com", prompt: "consent" });
  const fields = { grant_type: "authorization_code", client_id: apps.jira.client_id, client_secret: apps.jira.client_secret, code: cb.get("code"), redirect_uri: CALLBACK };
  const url = at("jira", "auth.atlassian.com", "/oauth/token");
  assert.equal((await post(url, fields)).status, 400, "a form body");
  const ok = await post(url, fields, { json: true });
  assert.equal(ok.status, 200);
  const resources = await (await fetch(`${as.url}/jira/api.atlassian.com/oauth/token/accessible-resources`, { headers: { authorization: `Bearer ${ok.body.access_token}` } })).json();
  const issue = await fetch(`${as.url}/jira/api.atlassian.com/ex/jira/${resources[0].id}/rest/api/3/issue/SUP-7`, { headers: { authorization: `Bearer ${ok.body.access_token}` } });
  assert.equal(issue.status, 200);
  const refresh = (rt) => post(url, { grant_type: "refresh_token", client_id: apps.jira.client_id, client_secret: apps.jira.client_secret, refresh_token: rt }, { json: true });
  assert.equal((await refresh(ok.body.refresh_token)).status, 200);
  assert.deepEqual(await refresh(ok.body.refresh_token), { status: 403, body: { error: "invalid_grant", error_description: "Unknown or invalid refresh token." } });
});

test("HubSpot: its own error body for a bad refresh token; revocation by DELETE", async () => {
  const cb = await grant("hubspot", "app.hubspot.com", "/oauth/authorize", { scope: "crm.objects.contacts.read" });
  const url = at("hubspot", "api.hubapi.com", "/oauth/v1/token");
  const base = { client_id: apps.hubspot.client_id, client_secret: apps.hubspot.client_secret };
  const ok = await post(url, { ...base, grant_type: "authorization_code", redirect_uri: CALLBACK, code: cb.get("code") });
  assert.equal(ok.body.expires_in, 1800);
  assert.equal((await fetch(`${as.url}/hubspot/api.hubapi.com/oauth/v1/refresh-tokens/${ok.body.refresh_token}`, { method: "DELETE" })).status, 204);
  const bad = await post(url, { ...base, grant_type: "refresh_token", refresh_token: ok.body.refresh_token });
  assert.deepEqual([bad.status, bad.body.status], [400, "BAD_REFRESH_TOKEN"]);
});
