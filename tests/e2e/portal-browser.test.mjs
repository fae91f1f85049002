// The tenant portal in a real browser (Debian's Chromium, driven by playwright-core), against the
// built worker in Miniflare: the operator mints a link for one tenant with some capabilities; the
// page opens it once (the link spent for a session held in the page's memory, dropped from the
// address bar), names the tenant and shows only what the link grants. Through it the tenant's
// user connects HubSpot at the gateway's hosted connect page and the provider stand-in's consent
// page (tests/mocks/authorization_servers.mjs), sees a refused delivery fail and delivers it again
// once the destination is fixed, and cannot reach another tenant's event. Screenshots go to
// target/test-artifacts/ and, with UPDATE_SCREENSHOTS=1, for the README to docs/screenshots/portal-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, copyFileSync, statSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import { startGateway, ROOT, planted, until } from "../harness.mjs";
import { startAuthorizationServers } from "../mocks/authorization_servers.mjs";
import { startDestination } from "../mocks/destination.mjs";

const ARTIFACTS = path.join(ROOT, "target", "test-artifacts");
const SCREENSHOTS = path.join(ROOT, "docs", "screenshots");
const A = "acme-portal";
const B = "other-co";
const NAME = "Acme Portal Co";
const RETURN = "https://app.acme.example/settings/integrations";
const secret = (prefix) => {
  const s = prefix + randomBytes(12).toString("hex");
  planted.add(s);
  return s;
};
const DEST_SECRET = "whsec_" + randomBytes(32).toString("base64");
const SOURCE_SECRET = "whsec_" + randomBytes(24).toString("base64");
let gw, as, dest, browser, context, page, sessionToken, otherEvent;
const errors = [];

/**
 * HubSpot's shipped template talking to the stand-in: each `https://host` origin in its base_url
 * and connect block becomes `{stand-in}/hubspot/host` (as connect.test.mjs's `standIn`).
 */
function hubspotAtStandIn(url) {
  const t = JSON.parse(readFileSync(path.join(ROOT, "kv-seed", "templates", "hubspot.json"), "utf8"));
  const walk = (v) =>
    typeof v === "string" ? v.replace(/^https:\/\/([^/]+)/, `${url}/hubspot/$1`) : Array.isArray(v) ? v.map(walk) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)])) : v;
  t.integration.base_url = walk(t.integration.base_url);
  t.connect = walk(t.connect);
  return t;
}

before(async () => {
  planted.add(DEST_SECRET).add(SOURCE_SECRET);
  gw = await startGateway();
  as = await startAuthorizationServers({ plant: (s) => planted.add(s) });
  dest = await startDestination(DEST_SECRET);
  for (const [t, name] of [[A, NAME], [B, "Other Co"]]) {
    const put = await gw.admin("PUT", t, { name, destination: { url: dest.url, secret: DEST_SECRET }, connect_return_urls: [RETURN] });
    assert.ok([200, 201].includes(put.status), put.text);
    const src = await gw.admin("PUT", `${t}/sources/hooks`, { kind: "standard", secrets: [SOURCE_SECRET] });
    assert.ok([200, 201].includes(src.status), src.text);
  }
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("template:hubspot", JSON.stringify(hubspotAtStandIn(as.url)));
  const callback = `${gw.url.origin}/v1/connect/callback`;
  const app = { client_id: `${A}-hubspot-app`, client_secret: secret("hubspot-secret-"), redirect_uris: [callback] };
  as.register("hubspot", app);
  const put = await gw.admin("PUT", `${A}/oauth-apps/hubspot`, { client_id: app.client_id, client_secret: app.client_secret, redirect_uri: callback });
  assert.ok([200, 201].includes(put.status), put.text);

  // Another tenant's event, whose id the portal must not reach.
  assert.equal((await gw.admin("POST", `${B}/sources/hooks/sample`)).status, 200);
  await until(async () => (otherEvent = (await gw.admin("GET", `${B}/events`)).body?.data?.[0]?.id), 20_000, "the other tenant's event");

  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  // A script error or a refused policy on any page fails the file (the 4xx answers tests provoke aside).
  context.on("page", (p) => {
    p.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
    p.on("console", (m) => m.type() === "error" && !/status of 4\d\d /.test(m.text()) && errors.push(`console: ${m.text()}`));
  });
  page = await context.newPage();
  mkdirSync(ARTIFACTS, { recursive: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await gw?.stop();
  await as?.close();
  await dest?.close();
});

/** A screenshot for the README (small: the viewport only) and the run's artifacts. */
async function shot(p, name) {
  await p.evaluate(() => document.getElementById("toast")?.replaceChildren());
  const file = path.join(ARTIFACTS, `portal-${name}.png`);
  await p.screenshot({ path: file });
  const size = statSync(file).size;
  assert.ok(size < 150_000, `portal-${name}.png is ${size} bytes`);
  // The README's copies change with every run (times, ids): taken again only when asked.
  if (process.env.UPDATE_SCREENSHOTS) copyFileSync(file, path.join(SCREENSHOTS, `portal-${name}.png`));
}
const heading = (name, p = page) => p.getByRole("heading", { level: 1, name }).waitFor();
/** Moves within the portal without a reload (a reload ends its session, which lives in the page). */
const within = (hash) => page.evaluate((h) => (location.hash = h), hash);
const mint = (tenant, capabilities, ttl_s = 900) => gw.admin("POST", `${tenant}/portal-links`, { capabilities, ttl_s });
/** What the portal API answers the page's session, called as the page would. */
const portalApi = (method, p) => page.evaluate(async ([m, url, token]) => {
  const res = await fetch(url, { method: m, headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json().catch(() => null) };
}, [method, p, sessionToken]);

/** Every form control on the page has a name a screen reader reads out (as console.test.mjs asks). */
async function assertLabelled(p, view) {
  const unlabelled = await p.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => !el.closest("[hidden]") && !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(unlabelled, [], `${view}: controls without a label`);
}

let link;

test("a portal link opens the tenant's portal: its name, only the granted sections, no admin sign-in, the link gone from the address bar", async () => {
  const minted = await mint(A, ["destinations", "events", "integrations"]);
  assert.equal(minted.status, 201, minted.text);
  link = minted.body.url;
  assert.equal(new URL(link).pathname, "/portal");
  const exchanged = page.waitForResponse((r) => r.url().endsWith("/v1/portal/session"));
  await page.goto(link);
  const answer = await (await exchanged).json();
  assert.equal(answer.tenant, A);
  sessionToken = answer.session;
  planted.add(sessionToken);
  await heading("Destinations");

  // Whose portal, and only what the link grants.
  await page.getByRole("banner").getByText(NAME).waitFor();
  const sections = await page.getByRole("navigation", { name: "Sections" }).getByRole("link").allTextContents();
  assert.deepEqual(sections, ["Destinations", "Integrations", "Event log", "Dead letters"]);
  // None of the operator's console: no admin token, no tenant picker, no "Sign out", no tenants.
  for (const [what, el] of [
    ["an admin token field", page.getByLabel("Admin token")],
    ["a tenant picker", page.locator("#tenant-pick")],
    ["Sign out", page.getByRole("button", { name: "Sign out" })],
    ["the tenants", page.getByRole("link", { name: "Tenants" })],
  ]) assert.equal(await el.count(), 0, `no ${what}`);
  // The link left the address bar, and the session is kept in no storage.
  assert.ok(!page.url().includes("link="), page.url());
  assert.equal(new URL(page.url()).pathname, "/portal");
  const stored = await page.evaluate(() => [...Object.values(sessionStorage), ...Object.values(localStorage)]);
  assert.deepEqual(stored, []);
});

test("a capability the link does not grant is not shown, and the portal API refuses it", async () => {
  await within(`#/t/${A}/usage`);
  await heading("Not available");
  assert.equal(await page.getByRole("img", { name: "Requests per day" }).count(), 0);
  await within(`#/t/${A}/keys`);
  await heading("Not available");
  for (const p of ["/v1/portal/usage", "/v1/portal/keys"]) {
    const r = await portalApi("GET", p);
    assert.equal(r.status, 403, `${p}: ${JSON.stringify(r.body)}`);
  }
  // Never the operator's API, whatever it names.
  assert.equal((await portalApi("GET", `/v1/admin/tenants/${A}/events`)).status, 401);
});

test("connect HubSpot through the hosted connect page and the provider's consent page; the portal shows it connected", async () => {
  await within(`#/t/${A}/integrations`);
  await heading("Integrations");
  await page.getByRole("button", { name: "Connect HubSpot" }).click();
  const form = page.getByRole("form", { name: "Connect HubSpot" });
  assert.equal(await form.getByLabel("Integration id").inputValue(), "hubspot");
  assert.equal(await form.getByLabel(/token|secret/i).count(), 0, "no credential is typed here");
  await assertLabelled(page, "the connect form");
  const [popup] = await Promise.all([context.waitForEvent("page"), form.getByRole("button", { name: "Connect HubSpot" }).click()]);
  await popup.waitForURL(/\/v1\/connect\/start\?/);
  await heading("Connect HubSpot", popup);
  await popup.getByText("crm.objects.contacts.read").waitFor();
  await popup.getByText(NAME).waitFor(); // whose app asks
  await shot(popup, "connect-page");
  // On to the provider's consent page, whose Allow sends the user back through the gateway.
  await popup.getByRole("link", { name: "Continue to HubSpot" }).click();
  await popup.getByRole("heading", { name: /Allow .* to access your hubspot account\?/ }).waitFor();
  await popup.getByRole("button", { name: "Allow" }).click();
  await popup.waitForURL(/\/portal\/connected\?/);
  await popup.getByText("is connected.").waitFor();
  assert.ok(!(await popup.content()).includes(sessionToken), "the popup never sees the session");

  // The portal notices on its own: the integration is there, connected.
  const card = page.getByRole("article", { name: "Integration hubspot" });
  await card.getByText("connected", { exact: true }).waitFor({ timeout: 20_000 });
  await card.getByRole("button", { name: "Disconnect hubspot" }).waitFor();
  const conn = await portalApi("GET", "/v1/portal/integrations/hubspot");
  assert.equal(conn.body.connection.status, "connected");
  assert.equal(as.tokenRequests("hubspot").at(-1).status, 200, "the code was exchanged");
  await popup.close();
  await shot(page, "integrations");
  await assertLabelled(page, "integrations");
});

test("a refused delivery shows failed in the portal; once the destination is fixed, a retry delivers it", async () => {
  dest.behaviour = () => ({ status: 410 });
  const sample = await gw.admin("POST", `${A}/sources/hooks/sample`);
  assert.equal(sample.status, 200, sample.text);
  await dest.until(() => dest.attempts.some((a) => a.status === 410), 20_000, "the refused attempt");

  await within(`#/t/${A}/events`);
  await heading("Event log");
  const status = page.getByRole("table", { name: `Events of ${A}, newest first` }).getByText("failed", { exact: true });
  for (let i = 0; i < 40 && !(await status.count()); i++) {
    await page.waitForTimeout(250);
    await page.getByRole("button", { name: "Filter" }).click();
  }
  assert.equal(await status.count(), 1, "the event shows failed");

  // The destination works again; the tenant's user retries the event from its page.
  dest.behaviour = () => ({ status: 200 });
  const deliveredBefore = dest.delivered.size;
  await page.getByRole("link", { name: /^evt_/ }).first().click();
  await page.getByRole("heading", { level: 1, name: /^Event evt_/ }).waitFor();
  await page.getByRole("cell", { name: "410", exact: true }).waitFor();
  await page.getByRole("button", { name: "Retry undelivered" }).click();
  await page.getByText(/Retrying 1 deliveries/).waitFor();
  await dest.until(() => dest.delivered.size === deliveredBefore + 1, 20_000, "the retried delivery");
  await page.getByRole("link", { name: "Back to the log" }).click();
  await heading("Event log");
  const delivered = page.getByRole("table", { name: `Events of ${A}, newest first` }).getByText("delivered", { exact: true });
  for (let i = 0; i < 40 && !(await delivered.count()); i++) {
    await page.waitForTimeout(250);
    await page.getByRole("button", { name: "Filter" }).click();
  }
  assert.equal(await delivered.count(), 1, "the event shows delivered");
  assert.equal(await status.count(), 0, "and no longer failed");
  await shot(page, "events");
});

// After the events' test: a disconnect may tell the tenant's destination with an event of its own.
test("disconnect from the portal: the gateway forgets the tokens, the card says disconnected and offers Reconnect", async () => {
  await within(`#/t/${A}/integrations`);
  const card = page.getByRole("article", { name: "Integration hubspot" });
  await card.getByText("connected", { exact: true }).waitFor();
  await card.getByRole("button", { name: "Disconnect hubspot" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Disconnect" }).click();
  await card.getByText(/^disconnected/).waitFor();
  assert.equal(await card.getByRole("button", { name: "Disconnect hubspot" }).count(), 0);
  await card.getByRole("button", { name: "Reconnect hubspot" }).waitFor();
  assert.equal((await portalApi("GET", "/v1/portal/integrations/hubspot")).body.connection.status, "disconnected");
});

test("another tenant's event is not found from the portal, whatever tenant the address names", async () => {
  for (const named of [A, B]) {
    await within(`#/t/${named}/events/${otherEvent}`);
    // Looked for in the session's tenant, whatever the address says.
    await page.getByRole("alert").filter({ hasText: `tenant \`${A}\` has no event \`${otherEvent}\`` }).waitFor();
    assert.equal(await page.getByRole("heading", { name: `Event ${otherEvent}` }).count(), 0);
  }
  const r = await portalApi("GET", `/v1/portal/events/${encodeURIComponent(otherEvent)}`);
  assert.equal(r.status, 404, JSON.stringify(r.body));
  assert.equal((await portalApi("POST", `/v1/portal/events/${encodeURIComponent(otherEvent)}/retry`)).status, 404);
  // The other tenant's event is still there for its own operator.
  assert.equal((await gw.admin("GET", `${B}/events/${otherEvent}`)).status, 200);
});

test("a link granting keys and usage: a key minted in the portal is shown once and works, and the usage view loads", async () => {
  const minted = await mint(A, ["keys", "usage"]);
  assert.equal(minted.status, 201, minted.text);
  const p = await context.newPage();
  await p.goto(minted.body.url);
  await heading("API keys", p);
  assert.deepEqual(await p.getByRole("navigation", { name: "Sections" }).getByRole("link").allTextContents(), ["API keys", "Usage"]);
  const form = p.getByRole("form", { name: "Mint a key" });
  // Publishable keys go with the widget's origins, which only the operator sets.
  assert.deepEqual(await form.getByLabel("Kind").locator("option").allTextContents(), ["Secret key (server side)"]);
  await form.getByLabel("Name").fill("portal bot");
  await form.getByRole("button", { name: "Mint key" }).click();
  const shown = p.getByRole("textbox", { name: "the new key" });
  await shown.waitFor();
  const key = await shown.inputValue();
  planted.add(key);
  const me = await gw.request("GET", "/v1/me", { key });
  assert.equal(me.status, 200, me.text);
  assert.equal(me.body.tenant, A);
  await p.getByRole("cell", { name: "portal bot", exact: true }).waitFor();
  await p.getByRole("link", { name: "Usage" }).click();
  await heading("Usage", p);
  await p.getByRole("img", { name: "Requests per day" }).waitFor();
  assert.equal(await p.locator(".error").count(), 0, "no error shown");
  await p.close();
});

test("a link opens once, a reload ends the session, and a refused session says so", async () => {
  // The same link again: spent.
  const again = await context.newPage();
  const refused = again.waitForResponse((r) => r.url().endsWith("/v1/portal/session"));
  await again.goto(link);
  assert.equal((await refused).status(), 401, "the link is spent");
  await heading("This portal is closed", again);
  await again.getByRole("alert").filter({ hasText: /expired, was used already, or is not valid/ }).waitFor();
  assert.equal(await again.getByRole("navigation", { name: "Sections" }).count(), 0);
  await again.close();

  // A session refused mid-way (its tenant deleted and made again): the page says it has ended.
  const fresh = await mint(B, ["events"]);
  assert.equal(fresh.status, 201, fresh.text);
  const other = await context.newPage();
  await other.goto(fresh.body.url);
  await heading("Event log", other);
  assert.deepEqual(await other.getByRole("navigation", { name: "Sections" }).getByRole("link").allTextContents(), ["Event log", "Dead letters"]);
  assert.equal((await gw.request("DELETE", `/v1/admin/tenants/${B}?confirm=${B}`, { admin: true })).status, 204);
  await gw.admin("PUT", B, { name: "Other Co" });
  await other.getByRole("link", { name: "Dead letters" }).click();
  await heading("This portal is closed", other);
  await other.getByRole("alert").filter({ hasText: "Your portal session has ended" }).waitFor();
  assert.equal(await other.getByRole("navigation", { name: "Sections" }).count(), 0, "nothing of the tenant's left on screen");
  await other.close();

  // A reload: the session lived in the page, and the link is gone from the address: the page
  // says so, and shows nothing of the tenant's.
  await page.reload();
  await heading("This portal is closed");
  await page.getByRole("alert").filter({ hasText: "a link works once, and a reload ends its session" }).waitFor();
  assert.ok(!(await page.content()).includes(NAME));
  assert.equal(await page.getByRole("navigation", { name: "Sections" }).count(), 0);
  assert.deepEqual(errors, [], "no script errors or refused policies");
});
