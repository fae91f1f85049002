// The widget in a real browser (Debian's Chromium, driven by playwright-core): the demo page
// served by the gateway, a message answered in streamed pieces through the mock provider, quick
// replies, the conversation restored after a reload, page styles kept out, and a page on a
// disallowed origin unable to use the key. Screenshots go to target/test-artifacts/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startGateway, ROOT } from "../harness.mjs";

const ARTIFACTS = path.join(ROOT, "target", "test-artifacts");
const DEMO_PK = "pk_dev_demo_local_only_0000000000";
let gw, browser, foreign;

before(async () => {
  // Words 40 ms apart, so the stream is visibly in pieces.
  gw = await startGateway({ extraBindings: { MOCK_STREAM_DELAY_MS: "40" } });
  // The demo tenant's allowed origins follow the port it is served on (the seed's `${PORT}`),
  // so its page works at this run's port as it does at `PORT=9000 make dev`'s.
  const origin = gw.url.origin;
  // A page on another origin embedding the demo key.
  foreign = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><title>Not allowed</title><h1>Elsewhere</h1><script src="${origin}/widget.js" data-key="${DEMO_PK}" async></script>`);
  });
  await new Promise((r) => foreign.listen(0, "127.0.0.1", r));
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(async () => {
  await browser?.close();
  await gw?.stop();
  foreign?.close();
});

async function openWidget(page) {
  await page.getByRole("button", { name: /Open chat/ }).click();
  await page.getByRole("dialog").waitFor();
}

test("demo page: open the widget, send a message, see it stream in, reload and see it again", async () => {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  await page.goto(new URL("/demo", gw.url).href);
  await openWidget(page);
  const dialog = page.getByRole("dialog");
  assert.equal(await dialog.getAttribute("aria-label"), "Demo Shop");
  await page.getByText("Hi! How can I help?").waitFor();
  // The page's `button { background: red !important }` does not reach into the shadow root.
  const bg = await page.getByRole("button", { name: /Open chat/ }).evaluate((b) => getComputedStyle(b).backgroundColor);
  assert.notEqual(bg, "rgb(255, 0, 0)");
  assert.equal(bg, "rgb(26, 115, 232)", "themed from the tenant's colour");

  await page.getByRole("textbox", { name: "Your message" }).fill("Where is my order?");
  await page.keyboard.press("Enter");
  // Sample the answer while it streams: it must grow in several steps.
  const seen = new Set();
  const answer = page.locator(".msg.bot").nth(1);
  for (let i = 0; i < 400; i++) {
    const t = (await answer.count()) ? await answer.textContent() : "";
    if (t) seen.add(t);
    if (t.includes("conversation.")) break;
    await page.waitForTimeout(10);
  }
  const final = await answer.textContent();
  assert.match(final, /You said: "Where is my order\?"/);
  assert.ok(seen.size >= 4, `the answer appeared in pieces (${seen.size} states)`);
  assert.ok(!final.includes("[["), "the quick-reply markup is not shown as text");
  await page.getByRole("group", { name: "Quick replies" }).getByRole("button", { name: "Track my order" }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, "widget-demo.png") });

  await page.reload();
  await openWidget(page);
  await page.locator(".msg.me", { hasText: "Where is my order?" }).waitFor();
  await page.locator(".msg.bot", { hasText: "You said" }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, "widget-after-reload.png") });

  // A quick reply sends itself and carries the conversation on.
  await page.getByRole("button", { name: "Track my order" }).click();
  // The mock numbers the turns it was sent: 4 means the first exchange went along.
  await page.locator(".msg.bot", { hasText: /You said: "Track my order". This is turn 4/ }).waitFor();

  // Phone-sized: the panel fills the screen.
  await page.setViewportSize({ width: 375, height: 700 });
  const box = await dialog.boundingBox();
  assert.ok(box.width >= 370 && box.height >= 690, JSON.stringify(box));
  await page.screenshot({ path: path.join(ARTIFACTS, "widget-phone.png") });
  await context.close();
});

test("a page on a disallowed origin cannot use the key", async () => {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${foreign.address().port}/`);
  await openWidget(page);
  await page.getByRole("textbox", { name: "Your message" }).fill("hello?");
  await page.keyboard.press("Enter");
  await page.getByRole("alert").waitFor();
  assert.equal(await page.locator(".msg.bot").count(), 1, "only the greeting: no answer");
  // And directly: the browser refuses the cross-origin call (the preflight is answered 403).
  const direct = await page.evaluate(async (url) => {
    try {
      await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: '{"message":"x"}' });
      return "allowed";
    } catch (e) {
      return "blocked";
    }
  }, new URL(`/v1/widget/chat?key=${DEMO_PK}`, gw.url).href);
  assert.equal(direct, "blocked");
  await page.screenshot({ path: path.join(ARTIFACTS, "widget-disallowed-origin.png") });
  await page.close();
});

test("a conversation id the gateway no longer issues is forgotten, and the message starts a new one", async () => {
  // As after the tenant was re-created, or after the master key that signed the id was retired:
  // well formed, but not one this gateway issues.
  const stale = "ab".repeat(32);
  const context = await browser.newContext();
  await context.addInitScript(([k, v]) => localStorage.setItem(k, v), [`eg-conversation:${DEMO_PK}`, stale]);
  const page = await context.newPage();
  await page.goto(new URL("/demo", gw.url).href);
  await openWidget(page);
  await page.getByText("Hi! How can I help?").waitFor();
  await page.getByRole("textbox", { name: "Your message" }).fill("Still there?");
  await page.keyboard.press("Enter");
  // The same turn number as the first message of a new conversation (the demo counts its system prompt).
  await page.locator(".msg.bot", { hasText: /You said: "Still there\?". This is turn 2\b/ }).waitFor();
  assert.equal(await page.getByRole("alert").count(), 0, "no error shown");
  const kept = await page.evaluate((k) => localStorage.getItem(k), `eg-conversation:${DEMO_PK}`);
  assert.match(kept, /^[0-9a-f]{64}$/);
  assert.notEqual(kept, stale);
  await context.close();
});
