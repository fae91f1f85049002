// The tenant portal's API (issue #39) against the built worker in Miniflare: a link minted by the
// operator (API and gatewayctl), the page served under the tenant's own frame-ancestors, the link
// spent once for a session, each capability allowed and each missing one refused (403), another
// tenant's ids not found, no admin token or API key taken as a session, a tenant deleted and
// created again refusing its old link and session, expired tokens refused, and a connect started
// from the portal coming back to the portal's own page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes, createHmac } from "node:crypto";
import { startGateway, planted, assertError, until, ROOT, MASTER_KEY, ADMIN_TOKEN } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startAuthorizationServers, consent } from "../mocks/authorization_servers.mjs";
import { sourceSecrets, sourceDoc } from "../samples.mjs";

const A = "portal-a";
const B = "portal-b";
const ORIGIN_A = "https://app.portal-a.example";
const S = sourceSecrets();
for (const s of Object.values(S)) planted.add(s);
let gw, dest, as, keyA;
/** Every link and session handed out: they are answers' to show, never a log line's. */
const tokens = [];

before(async () => {
  gw = await startGateway();
  const whsec = "whsec_" + randomBytes(24).toString("base64");
  planted.add(whsec);
  dest = await startDestination(whsec);
  ({ key: keyA } = await gw.tenant(A, { allowed_origins: [ORIGIN_A, "http://localhost:3000"], destination: { url: dest.url, secret: whsec } }));
  await gw.tenant(B, { destination: { url: dest.url, secret: whsec } });
  for (const t of [A, B]) assert.equal((await gw.admin("PUT", `${t}/sources/gh`, sourceDoc(t, "github", S.github))).status, 201);
  assert.equal((await gw.admin("PUT", `${B}/destinations/b-only`, { url: dest.url, secret: whsec })).status, 201);
  as = await startAuthorizationServers({ plant: (s) => planted.add(s) });
  const template = JSON.parse(readFileSync(path.join(ROOT, "kv-seed", "templates", "salesforce.json"), "utf8"));
  // Salesforce's template against the stand-in, as connect.test.mjs's `standIn` makes it, before
  // anything reads (and this isolate keeps) the template.
  const origin = (u) => u.replace(/^https:\/\/([^/]+)/, `${as.url}/salesforce/$1`);
  const here = `${as.url}/salesforce/`.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const rewrite = (v) => (v.startsWith("https://") ? origin(v) : v.startsWith("^https://") ? `^(?:https://|${here})${v.slice("^https://".length)}` : v);
  const walk = (v) => (typeof v === "string" ? rewrite(v) : Array.isArray(v) ? v.map(walk) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)])) : v);
  template.integration.base_url = origin(template.integration.base_url);
  if (template.integration.auth?.token_url) template.integration.auth.token_url = origin(template.integration.auth.token_url);
  template.connect = walk(template.connect);
  for (const rule of Object.values(template.settings ?? {})) if (rule.pattern) rule.pattern = rewrite(rule.pattern);
  await (await gw.mf.getKVNamespace("CONFIG")).put("template:salesforce", JSON.stringify(template));
});

after(async () => {
  try {
    const logged = gw?.logs.filter((l) => tokens.some((t) => l.message.includes(t) || l.message.includes(t.split(".")[1])));
    await gw?.stop();
    assert.deepEqual(logged, [], "no link or session in a log line");
  } finally {
    await dest?.close();
    await as?.close();
  }
});

/** Mints a link for `tenant` (admin API); returns the answer. */
async function mint(tenant, capabilities, ttl_s) {
  const r = await gw.admin("POST", `${tenant}/portal-links`, { capabilities, ...(ttl_s ? { ttl_s } : {}) });
  assert.equal(r.status, 201, r.text);
  tokens.push(linkOf(r.body.url));
  return r.body;
}
const linkOf = (url) => new URL(url).searchParams.get("link");
const exchange = (link) => gw.request("POST", "/v1/portal/session", { json: { link } });
/** A session of `capabilities` for `tenant`: minted, then spent. */
async function session(tenant, capabilities) {
  const r = await exchange(linkOf((await mint(tenant, capabilities)).url));
  assert.equal(r.status, 201, r.text);
  tokens.push(r.body.session);
  return r.body.session;
}
const portal = (method, p, token, json) => gw.request(method, `/v1/portal/${p}`, { key: token, json });

/** A token signed as the gateway signs its portal tokens (MASTER_KEY's id key, the kind's label). */
function forge(label, content) {
  const idKey = createHmac("sha256", Buffer.from(MASTER_KEY, "hex")).update("edge-gateway/ids/v1").digest();
  const payload = Buffer.from(JSON.stringify(content)).toString("base64url");
  const tag = createHmac("sha256", idKey).update(label + "\x1f").update(payload).digest().subarray(0, 16).toString("hex");
  return `${payload}.${tag}`;
}
const payloadOf = (token) => JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString());

/** The id of a new event of `tenant` (a signed GitHub sample through ingress). */
async function newEvent(tenant) {
  const sent = await gw.admin("POST", `${tenant}/sources/gh/sample`);
  assert.equal(sent.body?.answer?.status, 200, sent.text);
  let id;
  await until(async () => {
    id = (await gw.admin("GET", `${tenant}/events`)).body?.data?.[0]?.id;
    return id;
  }, 20_000, `an event of ${tenant}`);
  return id;
}

test("minting: the admin token only, known capabilities, a bounded lifetime, an existing tenant", async () => {
  const now = Math.floor(Date.now() / 1000);
  const m = await mint(A, ["destinations", "events"], 120);
  const url = new URL(m.url);
  assert.equal(url.origin + url.pathname, `${gw.url.origin}/portal`);
  assert.deepEqual(m.capabilities, ["destinations", "events"]);
  assert.ok(Math.abs(m.expires_at - (now + 120)) <= 5, `${m.expires_at} vs ${now + 120}`);
  const link = payloadOf(linkOf(m.url));
  assert.deepEqual(Object.keys(link).sort(), ["capabilities", "expires_at", "incarnation", "nonce", "tenant"]);
  assert.equal(link.tenant, A);
  const r = await gw.admin("POST", `${A}/portal-links`, { capabilities: ["usage"] });
  assert.equal(r.headers.get("cache-control"), "no-store");
  assert.ok(Math.abs(r.body.expires_at - (now + 900)) <= 5, "900 s by default");
  for (const body of [{ capabilities: [] }, { capabilities: ["admin"] }, { capabilities: ["events", "events"] }, { capabilities: ["events"], ttl_s: 59 }, { capabilities: ["events"], ttl_s: 3601 }, {}]) {
    assertError(assert, await gw.admin("POST", `${A}/portal-links`, body), 422, "validation_error");
  }
  assertError(assert, await gw.admin("POST", "nobody-here/portal-links", { capabilities: ["events"] }), 404, "not_found");
  const api = (await gw.request("GET", "/openapi.json")).body;
  for (const p of ["/v1/admin/tenants/{tenant}/portal-links", "/portal", "/v1/portal/session", "/v1/portal/me", "/v1/portal/events/{event}"]) assert.ok(api.paths[p], `OpenAPI: ${p}`);
  assert.deepEqual(api.components.schemas.PortalCapability.enum, ["destinations", "events", "integrations", "usage", "keys"]);
  const noAdmin = await gw.request("POST", `/v1/admin/tenants/${A}/portal-links`, { key: keyA, json: { capabilities: ["events"] } });
  assert.ok([401, 403].includes(noAdmin.status), `a tenant's own key mints no link: ${noAdmin.status}`);
});

test("gatewayctl portal-link prints a link that opens the portal", async () => {
  const r = await gw.ctl(["portal-link", A, "--capabilities", "destinations,events", "--ttl", "300"]);
  assert.equal(r.code, 0, r.stderr);
  const url = r.stdout.trim();
  assert.match(url, new RegExp(`^${gw.url.origin}/portal\\?link=[A-Za-z0-9_-]+\\.[0-9a-f]{32}$`));
  tokens.push(linkOf(url));
  assert.deepEqual(payloadOf(linkOf(url)).capabilities, ["destinations", "events"]);
  assert.equal((await fetch(url)).status, 200);
  const json = JSON.parse((await gw.ctl(["portal-link", A, "--capabilities", "usage", "--output", "json"])).stdout);
  assert.deepEqual(json.capabilities, ["usage"]);
  tokens.push(linkOf(json.url));
  const bad = await gw.ctl(["portal-link", A, "--capabilities", "root"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^gatewayctl: 422: .*unknown capability `root`/);
});

test("the page is the console in portal mode, framed only by the tenant's origins, and only for a good link", async () => {
  const { url } = await mint(A, ["events"]);
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  const csp = page.headers.get("content-security-policy");
  assert.match(csp, /script-src 'self';/);
  assert.match(csp, new RegExp(`frame-ancestors ${ORIGIN_A} http://localhost:3000$`));
  assert.equal(page.headers.get("x-frame-options"), null, "framing is the policy's to decide");
  assert.equal(page.headers.get("referrer-policy"), "no-referrer");
  assert.equal(page.headers.get("cache-control"), "no-store");
  const html = await page.text();
  assert.ok(html.includes('"/portal/app.js"') && !html.includes('"/console/'), "its files from /portal/");
  const js = await fetch(new URL("/portal/app.js", gw.url));
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type"), /javascript/);
  assert.equal((await fetch(new URL("/portal/nope.js", gw.url))).status, 404);
  // The operator's console page is no portal file (it would run as the console, framed by no policy of the tenant's).
  assert.equal((await fetch(new URL("/portal/index.html", gw.url))).status, 404);
  // Tenant B has no allowed origins: no one frames its portal.
  const b = await fetch((await mint(B, ["events"])).url);
  assert.match(b.headers.get("content-security-policy"), /frame-ancestors 'none'$/);
  // A changed or expired link serves nothing.
  const link = linkOf(url);
  const flipped = link.slice(0, -1) + (link.endsWith("0") ? "1" : "0");
  const expired = forge("portal-link", { ...payloadOf(link), expires_at: Math.floor(Date.now() / 1000) - 1 });
  for (const p of [`/portal?link=${flipped}`, `/portal?link=${expired}`, "/portal?link="]) {
    const r = await gw.request("GET", p);
    assertError(assert, r, 401, "authentication_error");
    assert.ok(!r.text.includes("<html"), p);
  }
  // Without a link (reloaded after the page dropped it from its address), the page is framed by no one.
  const bare = await fetch(new URL("/portal", gw.url));
  assert.equal(bare.status, 200);
  assert.match(bare.headers.get("content-security-policy"), /frame-ancestors 'none'$/);
  // Serving the page did not spend the link.
  assert.equal((await exchange(link)).status, 201);
});

test("the portal is served where the console is off (production without CONSOLE)", async () => {
  const prod = await startGateway({ seed: false, extraBindings: { GATEWAY_ENV: "production" } });
  try {
    assert.equal((await prod.request("GET", "/console")).status, 404);
    await prod.tenant("prod-t", { allowed_origins: [ORIGIN_A] });
    const m = await prod.request("POST", "/v1/admin/tenants/prod-t/portal-links", { admin: true, json: { capabilities: ["usage"] } });
    assert.equal(m.status, 201, m.text);
    tokens.push(linkOf(m.body.url));
    const page = await fetch(m.body.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy"), new RegExp(`frame-ancestors ${ORIGIN_A}$`));
    assert.equal((await fetch(new URL("/portal/app.js", prod.url))).status, 200);
    assert.equal((await fetch(new URL("/console/app.js", prod.url))).status, 404);
  } finally {
    await prod.stop();
  }
});

test("a link opens one session: a replay, a changed link, an expired one and a session in its place are refused", async () => {
  const link = linkOf((await mint(A, ["usage"])).url);
  const first = await exchange(link);
  assert.equal(first.status, 201, first.text);
  tokens.push(first.body.session);
  assert.equal(first.headers.get("cache-control"), "no-store");
  assert.equal(first.body.tenant, A);
  assert.deepEqual(first.body.capabilities, ["usage"]);
  const now = Date.now() / 1000;
  assert.ok(first.body.expires_at > now + 3500 && first.body.expires_at <= now + 3605, `an hour: ${first.body.expires_at}`);
  assertError(assert, await exchange(link), 401, "authentication_error");
  const other = linkOf((await mint(A, ["usage"])).url);
  const flipped = other.slice(0, -1) + (other.endsWith("0") ? "1" : "0");
  const expired = forge("portal-link", { ...payloadOf(other), expires_at: Math.floor(now) - 1 });
  for (const bad of [flipped, expired, first.body.session, "", "x.y"]) assertError(assert, await exchange(bad), 401, "authentication_error");
  // Signed our way with a live expiry, the same content is taken: what refused it above was its expiry.
  const live = forge("portal-link", { ...payloadOf(other), expires_at: Math.floor(now) + 120 });
  assert.equal((await exchange(live)).status, 201);
  assert.equal((await exchange(other)).status, 401, "its nonce was spent by the re-signed copy");
  assertError(assert, await gw.request("POST", "/v1/portal/session", { json: { link, extra: 1 } }), 422, "validation_error");
});

test("me names the session's tenant and capabilities", async () => {
  const s = await session(A, ["events", "keys"]);
  const me = await portal("GET", "me", s);
  assert.equal(me.status, 200, me.text);
  assert.deepEqual({ ...me.body, expires_at: undefined }, { tenant: A, name: A, capabilities: ["events", "keys"], expires_at: undefined });
  assert.equal(me.body.expires_at, payloadOf(s).expires_at);
});

test("each capability allows its own calls and nothing else (403 naming what is missing)", async () => {
  const refused = (r, capability) => {
    assertError(assert, r, 403, "permission_denied");
    if (capability) assert.match(r.body.error.message, new RegExp(`\`${capability}\``));
  };
  const ops = {
    destinations: [["GET", "destinations"], ["GET", "destinations/default"], ["PUT", "destinations/extra", { url: dest.url, secret: "whsec_" + Buffer.from("portal-extra-destination-secret").toString("base64") }]],
    events: [["GET", "events"], ["GET", "dead-letters"]],
    integrations: [["GET", "integrations"], ["GET", "marketplace"]],
    usage: [["GET", "usage"]],
    keys: [["GET", "keys"]],
  };
  planted.add("whsec_" + Buffer.from("portal-extra-destination-secret").toString("base64"));
  for (const cap of Object.keys(ops)) {
    const s = await session(A, [cap]);
    for (const [other, calls] of Object.entries(ops)) {
      for (const [m, p, body] of calls) {
        const r = await portal(m, p, s, body);
        if (other === cap) assert.ok(r.status === 200 || r.status === 201, `${cap}: ${m} ${p}: ${r.status} ${r.text}`);
        else refused(r, other);
      }
    }
  }
  // What no capability covers is refused whatever the session holds.
  const all = await session(A, ["destinations", "events", "integrations", "usage", "keys"]);
  for (const [m, p, body] of [
    ["GET", ""],
    ["PUT", "", { name: "taken over" }],
    ["GET", "llm"],
    ["GET", "sources"],
    ["GET", "sources/gh"],
    ["POST", "sources/gh/sample"],
    ["GET", "channels"],
    ["GET", "mcp-servers"],
    ["GET", "oauth-apps"],
    ["POST", "widget-keys"],
    ["GET", "tool-calls"],
    ["PUT", "integrations/raw", { base_url: "https://x.example", endpoints: {} }],
    ["POST", "portal-links", { capabilities: ["keys"] }],
  ]) {
    refused(await portal(m, p, all, body));
  }
  assert.equal((await gw.admin("GET", A)).body.name, A, "the tenant record is unchanged");
  // A key minted through the portal is the tenant's own.
  const minted = await portal("POST", "keys", all, { name: "from the portal", scopes: ["llm"] });
  assert.equal(minted.status, 201, minted.text);
  planted.add(minted.body.key);
  assert.equal((await gw.request("GET", "/v1/me", { key: minted.body.key })).body.tenant, A);
  assert.equal((await portal("DELETE", `keys/${minted.body.id}`, all)).status, 204);
});

test("the tenant is the session's: another tenant's event and destination are not found", async () => {
  const eventA = await newEvent(A);
  const eventB = await newEvent(B);
  const s = await session(A, ["events", "destinations"]);
  const own = await portal("GET", `events/${eventA}`, s);
  assert.equal(own.status, 200, own.text);
  assertError(assert, await portal("GET", `events/${eventB}`, s), 404, "not_found");
  assertError(assert, await portal("POST", `events/${eventB}/retry`, s), 404, "not_found");
  assertError(assert, await portal("GET", "destinations/b-only", s), 404, "not_found");
  assert.equal((await gw.admin("GET", `${B}/destinations/b-only`)).status, 200, "B's is there");
  const listed = (await portal("GET", "events", s)).body.data.map((e) => e.id);
  assert.ok(listed.includes(eventA) && !listed.includes(eventB), JSON.stringify(listed));
  // A header naming another tenant changes nothing.
  const named = await gw.request("GET", `/v1/portal/events/${eventB}`, { key: s, headers: { "x-tenant": B, "x-tenant-id": B } });
  assert.equal(named.status, 404);
});

test("only a portal session is a portal credential: not the admin token, an API key or a link", async () => {
  const link = linkOf((await mint(A, ["events"])).url);
  for (const token of [ADMIN_TOKEN, keyA, link, undefined]) {
    const r = await portal("GET", "events", token);
    assertError(assert, r, 401, "authentication_error");
  }
  const raw = await gw.request("GET", "/v1/portal/events", { headers: { authorization: await session(A, ["events"]) } });
  assert.equal(raw.status, 401, "a bearer, as `Authorization: Bearer <session>`");
});

test("expired sessions are refused; a session lives an hour at most", async () => {
  const s = await session(A, ["usage"]);
  const content = payloadOf(s);
  assert.ok(content.expires_at <= Date.now() / 1000 + 3605);
  const expired = forge("portal-session", { ...content, expires_at: Math.floor(Date.now() / 1000) - 1 });
  assertError(assert, await portal("GET", "usage", expired), 401, "authentication_error");
  assertError(assert, await portal("GET", "me", expired), 401, "authentication_error");
  // The same content, live, signed the same way, is taken: the expiry is what refused it.
  const live = forge("portal-session", { ...content, expires_at: Math.floor(Date.now() / 1000) + 60 });
  assert.equal((await portal("GET", "usage", live)).status, 200);
  // A link's label does not make a session.
  const asLink = forge("portal-link", { ...content, expires_at: Math.floor(Date.now() / 1000) + 60 });
  assertError(assert, await portal("GET", "usage", asLink), 401, "authentication_error");
});

test("a tenant deleted and created again refuses its old link, page and session", async () => {
  const C = "portal-c";
  await gw.tenant(C, { allowed_origins: [ORIGIN_A] });
  const s = await session(C, ["keys"]);
  assert.equal((await portal("GET", "keys", s)).status, 200);
  const { url } = await mint(C, ["keys"]);
  assert.equal((await gw.request("DELETE", `/v1/admin/tenants/${C}?confirm=${C}`, { admin: true })).status, 204);
  assertError(assert, await portal("GET", "keys", s), 401, "authentication_error");
  await gw.tenant(C, { allowed_origins: [ORIGIN_A] });
  assertError(assert, await portal("GET", "keys", s), 401, "authentication_error");
  assertError(assert, await portal("GET", "me", s), 401, "authentication_error");
  assertError(assert, await exchange(linkOf(url)), 401, "authentication_error");
  assertError(assert, await gw.request("GET", new URL(url).pathname + new URL(url).search), 401, "authentication_error");
  // A new link is of the tenant as it is now.
  assert.equal((await portal("GET", "keys", await session(C, ["keys"]))).status, 200);
});

test("a connect from the portal comes back to the portal's own page", async () => {
  const T = "portal-connect";
  const { key } = await gw.tenant(T, { connect_return_urls: ["https://app.example/back"] });
  const connection = async () => (await gw.request("GET", "/v1/integrations/sf", { key })).body?.connection?.status;
  const callback = `${gw.url.origin}/v1/connect/callback`;
  const app = { client_id: "portal-sf-app", client_secret: "sf-secret-" + randomBytes(8).toString("hex"), redirect_uris: [callback] };
  planted.add(app.client_secret);
  as.register("salesforce", app);
  assert.ok([200, 201].includes((await gw.admin("PUT", `${T}/oauth-apps/salesforce`, { client_id: app.client_id, client_secret: app.client_secret, redirect_uri: callback })).status));

  const s = await session(T, ["integrations"]);
  const market = await portal("GET", "marketplace", s);
  assert.ok(market.body.data.some((t) => t.id === "salesforce"), market.text);
  assertError(assert, await portal("POST", "integrations/sf/connect", await session(T, ["events"]), { template: "salesforce" }), 403, "permission_denied");
  const c = await portal("POST", "integrations/sf/connect", s, { template: "salesforce", settings: {} });
  assert.equal(c.status, 200, c.text);
  const state = new URL(c.body.authorization_url).searchParams.get("state");
  assert.equal(payloadOf(state).return_url, `${gw.url.origin}/portal/connected`);
  assert.ok(c.body.connect_url.startsWith(`${gw.url.origin}/v1/connect/start?`));
  const loc = await consent(c.body.authorization_url);
  const back = await fetch(loc, { redirect: "manual" });
  assert.equal(back.status, 302);
  const to = new URL(back.headers.get("location"));
  assert.equal(to.origin + to.pathname, `${gw.url.origin}/portal/connected`);
  assert.deepEqual(Object.fromEntries(to.searchParams), { connect: "connected", integration: "sf" });
  const page = await fetch(to);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<code>sf<\/code> is connected\./);
  assert.match(page.headers.get("content-security-policy"), /default-src 'none'.*frame-ancestors 'none'/);
  const got = await portal("GET", "integrations/sf", s);
  assert.equal(got.status, 200, got.text);
  assert.equal(got.body.connection?.status, "connected", "the portal shows it as the tenant's own API does");
  assert.equal(await connection(), "connected");
  // A registered return URL may still be asked; any other is refused.
  const elsewhere = await portal("POST", "integrations/sf/connect", s, { return_url: "https://evil.example/steal" });
  assertError(assert, elsewhere, 422, "validation_error");
  assert.equal((await portal("DELETE", "integrations/sf/connection", s)).status, 204);
  assert.equal(await connection(), "disconnected");
  assert.equal((await portal("GET", "integrations/sf", s)).body.connection?.status, "disconnected");
});
