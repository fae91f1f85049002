// The operator's console in a real browser (Debian's Chromium, driven by playwright-core),
// against the built worker in Miniflare: signing in, each view, creating a tenant, minting and
// revoking a key, a source's signed sample reaching the destination, a dead letter replayed,
// installing and testing an integration, LLM routes saved, and the usage charts showing the
// requests just made. Screenshots go to target/test-artifacts/console-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startGateway, ROOT, ADMIN_TOKEN, planted } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startSaas } from "../mocks/saas.mjs";

const ARTIFACTS = path.join(ROOT, "target", "test-artifacts");
const DEST_SECRET = "whsec_" + Buffer.from("console-destination-secret-0001").toString("base64");
const GITHUB_SECRET = "gh-console-secret-" + Date.now();
const REST_TOKEN = "rest-console-token-" + Date.now();
const TENANT = "console-co";
let gw, dest, saas, browser, context, page;
const errors = [];

before(async () => {
  planted.add(DEST_SECRET).add(GITHUB_SECRET).add(REST_TOKEN);
  gw = await startGateway();
  dest = await startDestination(DEST_SECRET);
  saas = await startSaas({ rest: REST_TOKEN, salesforce: { refreshToken: "unused" } });
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: gw.url.origin });
  page = await context.newPage();
  // A script error or a refused policy anywhere fails the file (the 4xx answers tests provoke aside).
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && !/status of 4\d\d /.test(m.text()) && errors.push(`console: ${m.text()}`));
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await gw?.stop();
  await dest?.close();
  await saas?.close();
});

/** A screenshot of the page as it stands, without the passing messages of earlier steps. */
async function shot(name) {
  await page.evaluate(() => document.getElementById("toast").replaceChildren());
  await page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });
}
const at = (hash) => page.goto(new URL(`/console${hash}`, gw.url).href);
const heading = (name) => page.getByRole("heading", { level: 1, name }).waitFor();
const confirm = async (typed) => {
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  if (typed) await dialog.getByRole("textbox").fill(typed);
  await dialog.getByRole("button", { name: /Delete|Revoke|Replay|Rotate/ }).click();
};

/** Every form control on the page has a name a screen reader reads out. */
async function assertLabelled(view) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => !el.closest("[hidden]") && !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(unlabelled, [], `${view}: controls without a label`);
}

test("the console is served with a strict policy, and off in production unless turned on", async () => {
  const res = await fetch(new URL("/console", gw.url));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/html/);
  assert.match(res.headers.get("content-security-policy"), /script-src 'self';.*frame-ancestors 'none'/);
  const again = await fetch(new URL("/console/app.js", gw.url), { headers: { "if-none-match": res.headers.get("etag") } });
  assert.equal(again.status, 200, "each file has its own version");
  const same = await fetch(new URL("/console/app.js", gw.url), { headers: { "if-none-match": again.headers.get("etag") } });
  assert.equal(same.status, 304);
  assert.equal((await fetch(new URL("/console/nope.js", gw.url))).status, 404);

  const prod = await startGateway({ seed: false, extraBindings: { GATEWAY_ENV: "production" } });
  const off = await prod.request("GET", "/console");
  assert.equal(off.status, 404);
  assert.match(off.body.error.message, /CONSOLE = "on"/);
  await prod.stop();
  const on = await startGateway({ seed: false, extraBindings: { GATEWAY_ENV: "production", CONSOLE: "on" } });
  assert.equal((await on.request("GET", "/console")).status, 200);
  await on.stop();
});

/**
 * Signed out, the page is the sign-in form and nothing else: no tenant picker, no "Sign out",
 * no sections (on a phone too, where the sections are a strip of their own).
 */
async function assertOnlySignIn(when) {
  await heading("Sign in");
  for (const size of [{ width: 1280, height: 900 }, { width: 390, height: 844 }]) {
    await page.setViewportSize(size);
    const shown = {
      picker: await page.locator("#tenant-pick").isVisible(),
      signOut: await page.getByRole("button", { name: "Sign out" }).count(),
      sections: await page.getByRole("navigation", { name: "Sections" }).count(),
    };
    assert.deepEqual(shown, { picker: false, signOut: 0, sections: 0 }, `${when}, ${size.width}px wide: only the sign-in form`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

test("sign in: a wrong token is refused, the right one is kept in this tab only", async () => {
  await at("");
  await assertOnlySignIn("before signing in");
  await assertLabelled("sign in");
  await page.getByLabel("Admin token").fill("not-the-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "That token was not accepted." }).waitFor();
  await assertOnlySignIn("after a wrong token");
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.keyboard.press("Enter");
  await heading("Tenants");
  await page.getByRole("link", { name: "demo", exact: true }).waitFor();
  assert.ok(!page.url().includes(ADMIN_TOKEN), "never in the URL");
  const stored = await page.evaluate(() => ({ session: Object.values(sessionStorage), local: Object.values(localStorage) }));
  assert.deepEqual(stored, { session: [ADMIN_TOKEN], local: [] });
  await assertLabelled("tenants");
  // Signed in: the picker and "Sign out" are there; signing out leaves the form alone again.
  assert.equal(await page.locator("#tenant-pick").isVisible(), true);
  await page.getByRole("navigation", { name: "Sections" }).waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await assertOnlySignIn("after signing out");
  assert.deepEqual(await page.evaluate(() => Object.values(sessionStorage)), [], "the token forgotten");
  await page.reload();
  await assertOnlySignIn("after signing out and reloading");
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.keyboard.press("Enter");
  await heading("Tenants");
});

test("create a tenant, then mint a key shown once, change its settings, rotate it and revoke both", async () => {
  await at("#/tenants");
  const form = page.getByRole("form", { name: "New tenant" });
  await form.getByLabel("Tenant id").fill(TENANT);
  await form.getByLabel("Name").fill("Console Co");
  await form.getByLabel("Destination URL").fill(dest.url);
  await form.getByLabel("Destination secret").fill(DEST_SECRET);
  await form.getByRole("button", { name: "Create tenant" }).click();
  await heading("API keys");
  const profile = await gw.admin("GET", TENANT);
  assert.equal(profile.body.name, "Console Co");
  assert.deepEqual(profile.body.destination, { url: dest.url, secret: { set: true } });
  assert.equal(await page.locator("#tenant-pick").inputValue(), TENANT);

  const mint = page.getByRole("form", { name: "Mint a key" });
  await mint.getByLabel("Name").fill("support bot");
  await mint.getByLabel("llm").check();
  await mint.getByLabel("integrations").check();
  await mint.getByLabel("Monthly budget (USD)").fill("25");
  await mint.getByRole("button", { name: "Mint key" }).click();
  const shown = page.getByRole("textbox", { name: "the new key" });
  await shown.waitFor();
  const key = await shown.inputValue();
  planted.add(key);
  assert.match(key, /^sk_/);
  await page.getByRole("button", { name: "Copy the new key" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await page.getByRole("cell", { name: "$0.00 of $25 this month" }).waitFor();
  await shot("keys");
  const me = await gw.request("GET", "/v1/me", { key });
  assert.equal(me.status, 200);
  assert.equal(me.body.tenant, TENANT);
  assert.deepEqual(me.body.scopes, ["llm", "integrations"]);

  // Shown once: after a reload, only its hint.
  await page.reload();
  await heading("API keys");
  assert.equal(await page.getByRole("textbox", { name: "the new key" }).count(), 0);
  assert.ok(!(await page.content()).includes(key));
  // Its settings change in place: a rate limit set, the budget cleared.
  await page.getByRole("button", { name: "Edit support bot" }).click();
  const edit = page.getByRole("form", { name: "Edit support bot" });
  assert.equal(await edit.getByLabel("Monthly budget (USD)").inputValue(), "25");
  assert.equal(await edit.getByLabel("integrations").isChecked(), true);
  await edit.getByLabel("Requests per minute").fill("30");
  await edit.getByLabel("Monthly budget (USD)").fill("");
  await edit.getByRole("button", { name: "Save key" }).click();
  await edit.waitFor({ state: "detached" });
  const keyId = me.body.key_id;
  const changed = await gw.admin("GET", `${TENANT}/keys/${keyId}`);
  assert.deepEqual([changed.body.rpm, changed.body.budget, changed.body.scopes], [30, undefined, ["llm", "integrations"]]);
  // Rotating mints a second key with the same settings, shown once; the first still works.
  await page.getByRole("button", { name: "Rotate support bot" }).click();
  await confirm();
  await page.getByText("Key support bot rotated.").waitFor();
  const rotated = await page.getByRole("textbox", { name: "the new key" }).inputValue();
  planted.add(rotated);
  assert.notEqual(rotated, key);
  for (const k of [key, rotated]) assert.equal((await gw.request("GET", "/v1/me", { key: k })).status, 200);
  assert.equal(await page.getByRole("button", { name: "Revoke support bot" }).count(), 2);
  for (let left = 2; left > 0; left--) {
    await page.getByRole("button", { name: "Revoke support bot" }).first().click();
    await confirm();
    await page.waitForFunction((n) => document.querySelectorAll("tbody tr").length === n - 1 || (n === 1 && document.body.textContent.includes("No keys yet.")), left);
  }
  await page.getByText("No keys yet.").waitFor();
  for (const k of [key, rotated]) assert.equal((await gw.request("GET", "/v1/me", { key: k })).status, 401);
  await assertLabelled("keys");

  // A key holding every scope (`*`) is shown so, and saved without losing it.
  const all = await gw.admin("POST", `${TENANT}/keys`, { name: "all scopes", scopes: ["*"] });
  assert.equal(all.status, 201, all.text);
  planted.add(all.body.key);
  await page.reload();
  await heading("API keys");
  await page.getByRole("button", { name: "Edit all scopes" }).click();
  const wide = page.getByRole("form", { name: "Edit all scopes" });
  assert.equal(await wide.getByLabel("every scope (*)").isChecked(), true);
  await wide.getByLabel("Requests per minute").fill("12");
  await wide.getByRole("button", { name: "Save key" }).click();
  await wide.waitFor({ state: "detached" });
  const kept = await gw.admin("GET", `${TENANT}/keys/${all.body.id}`);
  assert.deepEqual([kept.body.rpm, kept.body.scopes], [12, ["*"]]);
  assert.equal((await gw.admin("DELETE", `${TENANT}/keys/${all.body.id}`)).status, 204);
});

test("a source's webhook URL, and a signed sample delivered to the tenant's destination", async () => {
  await at(`#/t/${TENANT}/sources/+new`);
  await heading("New source");
  await page.getByLabel("Source name").fill("gh");
  await page.getByLabel("Kind").selectOption("github");
  const doc = page.getByLabel("Document");
  const example = JSON.parse(await doc.inputValue());
  assert.equal(example.kind, "github");
  await doc.fill(JSON.stringify({ kind: "github", secrets: [GITHUB_SECRET] }));
  await assertLabelled("new source");
  await page.getByRole("button", { name: "Save" }).click();
  await heading("Sources");
  const url = `${gw.url.origin}/v1/webhooks/${TENANT}/gh`;
  assert.equal(await page.getByRole("textbox", { name: "webhook URL of gh" }).inputValue(), url);

  await page.getByRole("button", { name: "Send a signed sample to gh" }).click();
  const sent = page.getByRole("region", { name: "Sample sent to gh" });
  await sent.getByText("accepted 202").or(sent.getByText("accepted 200")).waitFor();
  await dest.until(() => dest.delivered.size === 1, 20000, "the sample's delivery");
  const [event] = [...dest.delivered.values()][0];
  assert.equal(event.type, "github.issues.opened");
  assert.equal(event.source, "gh");
  await shot("sources");
});

test("a refused delivery becomes a dead letter; replaying it delivers it", async () => {
  dest.behaviour = () => ({ status: 410 });
  await at(`#/t/${TENANT}/sources`);
  await page.getByRole("button", { name: "Send a signed sample to gh" }).click();
  await page.getByRole("region", { name: "Sample sent to gh" }).getByText(/accepted/).waitFor();
  await dest.until(() => dest.attempts.some((a) => a.status === 410), 20000, "the refused attempt");

  await at(`#/t/${TENANT}/dead-letters`);
  await heading("Dead letters");
  let replay = page.getByRole("button", { name: /^Replay / });
  for (let i = 0; i < 40 && !(await replay.count()); i++) {
    await new Promise((r) => setTimeout(r, 250));
    await page.reload();
    replay = page.getByRole("button", { name: /^Replay / });
  }
  assert.equal(await replay.count(), 1, "one dead letter");
  await page.getByRole("cell", { name: /410/ }).waitFor();
  // The API's times are Unix seconds: shown as today's date, not 1970's or a distant year's.
  const year = String(new Date().getFullYear());
  const failed = await page.getByRole("table", { name: `Dead letters of ${TENANT}` }).locator("tbody td").nth(2).textContent();
  assert.ok(failed.includes(year), `dead letter failed at ${failed}`);
  await shot("dead-letters");
  dest.behaviour = () => ({ status: 200 });
  await replay.click();
  await confirm();
  await page.getByText("No dead letters: everything got through.").waitFor();
  await dest.until(() => dest.delivered.size === 2, 20000, "the replayed delivery");

  // The event log shows both events, and one event's deliveries and attempts.
  await at(`#/t/${TENANT}/events`);
  await heading("Event log");
  const links = page.getByRole("link", { name: /^evt_/ });
  await links.first().waitFor();
  assert.equal(await links.count(), 2);
  await page.getByLabel("Status").selectOption("failed");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByText("No events match.").waitFor();
  await page.getByLabel("Status").selectOption("delivered");
  await page.getByRole("button", { name: "Filter" }).click();
  await links.first().waitFor();
  assert.equal(await links.count(), 2, "the replayed event is delivered too");
  // Following the log shows a new event without a reload.
  await page.getByLabel("Status").selectOption("");
  await page.getByLabel("Follow new events").check();
  const sample = await gw.admin("POST", `${TENANT}/sources/gh/sample`);
  assert.equal(sample.body.answer.status, 200, sample.text);
  await page.waitForFunction(() => document.querySelectorAll("tbody a[href*='/events/evt_']").length === 3);
  await page.getByLabel("Follow new events").uncheck();
  await links.first().click();
  await page.getByRole("heading", { level: 1, name: /^Event evt_/ }).waitFor();
  await page.getByRole("table", { name: "Every delivery attempt" }).waitFor();
  const attemptAt = await page.getByRole("table", { name: "Every delivery attempt" }).locator("tbody td").nth(2).textContent();
  assert.ok(attemptAt.includes(year), `attempt at ${attemptAt}`);
  const lastAt = await page.getByRole("table", { name: "Deliveries", exact: true }).locator("tbody td").nth(3).textContent();
  assert.ok(lastAt.includes(year), `last attempt at ${lastAt}`);
  await shot("event");
  await assertLabelled("event");
});

test("a named destination's dead letters are recovered since a time", async () => {
  const billing = await startDestination(DEST_SECRET);
  try {
    billing.behaviour = () => ({ status: 410 });
    const put = await gw.admin("PUT", `${TENANT}/destinations/billing`, { url: billing.url, secret: DEST_SECRET });
    assert.equal(put.status, 201, put.text);
    const sent = await gw.admin("POST", `${TENANT}/sources/gh/sample`);
    assert.equal(sent.body.answer.status, 200, sent.text);
    await billing.until(() => billing.attempts.some((a) => a.status === 410), 20000, "the refused delivery");
    for (let i = 0; i < 40 && !(await gw.admin("GET", `${TENANT}/dead-letters`)).body.data.length; i++) await new Promise((r) => setTimeout(r, 250));
    billing.behaviour = () => ({ status: 200 });

    await at(`#/t/${TENANT}/destinations`);
    await heading("Destinations");
    await page.getByRole("button", { name: "Recover failed deliveries to billing" }).click();
    const recover = page.getByRole("form", { name: "Recover billing" });
    await assertLabelled("recover");
    await recover.getByRole("button", { name: "Retry dead letters" }).click();
    await page.getByText(/^1 delivery to billing queued again/).waitFor();
    await billing.until(() => billing.delivered.size === 1, 20000, "the recovered delivery");
    assert.deepEqual((await gw.admin("GET", `${TENANT}/dead-letters`)).body.data, []);
  } finally {
    await billing.close();
  }
});

test("the event catalog's view, and a destination's filter types picked from it", async () => {
  await at("#/event-types");
  await heading("Event types");
  await page.getByRole("cell", { name: "stripe.*", exact: true }).waitFor();
  await assertLabelled("event types");
  await at(`#/t/${TENANT}/destinations/+new`);
  await heading("New destination");
  await page.getByLabel("Destination name").fill("picked");
  // `*` says it takes every event; no label names source kinds, as a filter type is not scoped to them.
  assert.equal((await page.getByLabel("Event type").locator('option[value="*"]').textContent()).trim(), "* (every event)");
  assert.equal((await page.getByLabel("Event type").locator('option[value="stripe.*"]').textContent()).trim(), "stripe.*");
  for (const type of ["stripe.*", "message.received", "stripe.*"]) {
    await page.getByLabel("Event type").selectOption(type);
    await page.getByRole("button", { name: "Add to filter" }).click();
  }
  const doc = JSON.parse(await page.getByLabel("Document").inputValue());
  assert.deepEqual(doc.filter.types, ["*", "stripe.*", "message.received"], "added once each");
  await page.getByLabel("Document").fill(JSON.stringify({ ...doc, url: dest.url, secret: DEST_SECRET, filter: { types: doc.filter.types.slice(1) } }));
  await page.getByRole("button", { name: "Save" }).click();
  await heading("Destinations");
  const saved = await gw.admin("GET", `${TENANT}/destinations/picked`);
  assert.deepEqual(saved.body.filter.types, ["stripe.*", "message.received"]);
  assert.equal((await gw.admin("DELETE", `${TENANT}/destinations/picked`)).status, 204);
});

test("install an integration from the marketplace and test it", async () => {
  await at(`#/t/${TENANT}/integrations`);
  await heading("Integrations");
  await page.getByRole("article", { name: "HubSpot CRM" }).or(page.getByRole("article", { name: /HubSpot/ }).first()).waitFor();
  await page.getByLabel("Search the marketplace").fill("REST");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("button", { name: "Install Generic REST API" }).click();
  const form = page.getByRole("form", { name: "Install Generic REST API" });
  await form.getByLabel("Integration id").fill("api");
  await form.getByLabel("base_url").fill(`${saas.url}/rest/api.example.com`);
  assert.equal(await form.getByLabel("token").getAttribute("type"), "password", "a credential is typed as a password");
  await form.getByLabel("token").fill(REST_TOKEN);
  await assertLabelled("install form");
  await form.getByRole("button", { name: "Install Generic REST API" }).click();
  const card = page.getByRole("article", { name: "Integration api" });
  await card.getByText("not checked").waitFor();
  await card.getByRole("button", { name: "Test api" }).click();
  await card.getByText("healthy").waitFor();
  await card.getByText(/Test passed: list answered 200/).waitFor();
  assert.ok(saas.seen.some((r) => r.template === "rest" && r.path === "/health"));
  const stored = await gw.admin("GET", `${TENANT}/integrations/api`);
  assert.deepEqual(stored.body.auth.token, { set: true });
  await shot("integrations");
});

test("LLM routes saved from the console, and usage charts of the requests just made", async () => {
  await at(`#/t/${TENANT}/llm`);
  await heading("LLM routes");
  // A document the gateway refuses: its message shows in the form, and nothing is saved.
  const wrong = { providers: { mock: { kind: "mock" } }, routes: { default: [{ provider: "nowhere", model: "x" }] } };
  await page.getByLabel("LLM configuration").fill(JSON.stringify(wrong));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").filter({ hasText: "nowhere" }).waitFor();
  assert.equal((await gw.admin("GET", `${TENANT}/llm`)).status, 404, "nothing saved");
  await page.getByLabel("LLM configuration").fill("{ not json");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("alert").filter({ hasText: "LLM configuration is not valid JSON" }).waitFor();
  const config = { providers: { mock: { kind: "mock" } }, routes: { default: [{ provider: "mock", model: "gpt-4o-mini" }] } };
  await page.getByLabel("LLM configuration").fill(JSON.stringify(config));
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("cell", { name: "mock/gpt-4o-mini" }).waitFor();

  const k = await gw.admin("POST", `${TENANT}/keys`, { name: "usage", scopes: ["llm"] });
  planted.add(k.body.key);
  for (let i = 0; i < 3; i++) {
    const r = await gw.request("POST", "/v1/chat/completions", { key: k.body.key, json: { model: "default", messages: [{ role: "user", content: `hello number ${i}` }] } });
    assert.equal(r.status, 200, r.text);
  }
  // The isolate sends its counts a few seconds after the first one.
  let tokens = 0;
  for (let i = 0; i < 60; i++) {
    const u = await gw.admin("GET", `${TENANT}/usage?group_by=model`);
    const row = u.body.data.find((r) => r.model === "gpt-4o-mini");
    if (row?.requests === 3) {
      tokens = row.input_tokens + row.output_tokens;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(tokens > 0, "counted");

  await at(`#/t/${TENANT}/usage`);
  await heading("Usage");
  const chart = page.getByRole("img", { name: "Requests per day" });
  await chart.waitFor();
  const bar = chart.locator("rect", { has: page.locator("title", { hasText: "gpt-4o-mini" }) });
  assert.equal(await bar.getAttribute("data-value"), "3");
  const tokenBar = page.getByRole("img", { name: /Tokens per day/ }).locator("rect");
  assert.equal(Number(await tokenBar.getAttribute("data-value")), tokens);
  const costBar = page.getByRole("img", { name: /Cost per day/ }).locator("rect");
  assert.ok(Number(await costBar.getAttribute("data-value")) > 0, "priced");
  const row = page.getByRole("row").filter({ hasText: "gpt-4o-mini" });
  assert.match(await row.textContent(), /gpt-4o-mini3/);
  await shot("usage");
  await assertLabelled("usage");
  // Split by route family: the LLM requests are the llm series.
  await page.getByLabel("Split by").selectOption("route");
  await page.getByRole("heading", { name: "By day and route family" }).waitFor();
  const llmBar = page.getByRole("img", { name: "Requests per day" }).locator("rect", { has: page.locator("title", { hasText: /^llm, / }) });
  assert.equal(await llmBar.getAttribute("data-value"), "3");
});

test("edit a tenant's profile, and delete a tenant only after typing its id", async () => {
  await at(`#/tenants/${TENANT}`);
  await heading(`Tenant ${TENANT}`);
  const profile = page.getByLabel("Profile");
  const doc = JSON.parse(await profile.inputValue());
  assert.deepEqual(doc.destination.secret, { set: true }, "the secret is shown as set, never its value");
  await profile.fill(JSON.stringify({ ...doc, name: "Console Company" }));
  await page.getByRole("button", { name: "Save" }).click();
  await heading("Tenants");
  await page.getByRole("cell", { name: "Console Company" }).waitFor();
  const saved = await gw.admin("GET", TENANT);
  assert.equal(saved.body.name, "Console Company");
  assert.deepEqual(saved.body.destination, { url: dest.url, secret: { set: true } }, "the secret kept");

  await gw.tenant("doomed");
  await page.reload();
  await page.getByRole("button", { name: "Delete doomed" }).click();
  const dialog = page.getByRole("dialog");
  const ok = dialog.getByRole("button", { name: "Delete" });
  await dialog.getByRole("textbox").fill("doome");
  assert.equal(await ok.isDisabled(), true, "not until the id is typed");
  await dialog.getByRole("textbox").fill("doomed");
  await ok.click();
  await page.getByRole("link", { name: "doomed", exact: true }).waitFor({ state: "detached" });
  assert.equal((await gw.admin("GET", "doomed")).status, 404);
  assert.equal(await page.locator("#tenant-pick option[value=doomed]").count(), 0, "gone from the picker");
});

test("every view loads, and on a phone the page fits the screen", async () => {
  for (const [hash, name] of [
    ["#/tenants", "Tenants"],
    ["#/event-types", "Event types"],
    [`#/tenants/${TENANT}`, `Tenant ${TENANT}`],
    [`#/t/${TENANT}/keys`, "API keys"],
    [`#/t/${TENANT}/sources`, "Sources"],
    [`#/t/${TENANT}/sources/gh`, "Sources: gh"],
    [`#/t/${TENANT}/destinations`, "Destinations"],
    [`#/t/${TENANT}/channels`, "Channels"],
    [`#/t/${TENANT}/integrations`, "Integrations"],
    [`#/t/${TENANT}/llm`, "LLM routes"],
    [`#/t/${TENANT}/events`, "Event log"],
    [`#/t/${TENANT}/dead-letters`, "Dead letters"],
    [`#/t/${TENANT}/tool-calls`, "Tool calls"],
    [`#/t/${TENANT}/usage`, "Usage"],
  ]) {
    await at(hash);
    await heading(name);
    assert.equal(await page.locator(".error").count(), 0, `${name}: no error shown`);
    await assertLabelled(name);
  }
  // The keyboard reaches the sections: the skip link first, then the nav.
  await at(`#/t/${TENANT}/keys`);
  await heading("API keys");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main", "a new view takes the focus");
  await page.reload();
  await heading("API keys");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");

  await page.setViewportSize({ width: 390, height: 844 });
  await at(`#/t/${TENANT}/usage`);
  await heading("Usage");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  await shot("phone");
  assert.deepEqual(errors, [], "no script errors or refused policies");
});
