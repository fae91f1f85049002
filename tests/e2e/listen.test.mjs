// `gatewayctl listen`, the built binary, as a tenant's destination and as the channel providers'
// stand-in for the gateway in Miniflare: a delivery signed with the destination's secret is
// printed as verified and recorded delivered; one signed with another secret is refused with a
// 401 the event log shows; `--status` answers every delivery with a failure to try retries; a
// send through each channel kind gets that provider's receipt, and no token is printed; a
// request a web page could send is refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { startGateway, planted, ROOT, ADMIN_TOKEN } from "../harness.mjs";
import { providerTokens } from "../mocks/providers.mjs";

const BIN = path.join(ROOT, "target", "debug", "gatewayctl");
const whsec = () => "whsec_" + randomBytes(24).toString("base64");
const SECRET = whsec();
const OTHER = whsec();
const SOURCE_SECRET = whsec();
const tokens = providerTokens();
for (const s of [SECRET, OTHER, SOURCE_SECRET, tokens.whatsapp, tokens.slack, tokens.telegram, tokens.twilio]) planted.add(s);
const CLOCK = "\\d\\d:\\d\\d:\\d\\d";
let gw;

before(async () => {
  gw = await startGateway({ extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
});
after(async () => {
  await gw?.stop();
});

/**
 * Starts `gatewayctl listen --port 0 ...args` with `secret` in GATEWAY_DESTINATION_SECRET (or on
 * stdin, for `--secret -`); resolves once it printed its Ready line, with its URL, its stdout
 * lines so far (kept up to date), `until` (waits for a line matching a pattern) and `exited`
 * (its exit code).
 */
async function listen(args, secret, { stdin = false } = {}) {
  const env = { PATH: process.env.PATH, ...(stdin ? {} : { GATEWAY_DESTINATION_SECRET: secret }) };
  const child = spawn(BIN, ["listen", "--port", "0", ...args, ...(stdin ? ["--secret", "-"] : [])], { env });
  child.stdin.end(stdin ? secret + "\n" : "");
  const l = { lines: [], stderr: "", out: "" };
  child.stdout.on("data", (d) => {
    l.out += d;
    l.lines = l.out.split("\n");
  });
  child.stderr.on("data", (d) => (l.stderr += d));
  l.exited = new Promise((resolve) => child.on("close", resolve));
  l.kill = () => child.exitCode === null && child.kill();
  l.until = async (re, what, ms = 20_000) => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      const i = l.lines.findIndex((x) => re.test(x));
      if (i >= 0) return { line: l.lines[i], index: i, match: l.lines[i].match(re) };
      if (child.exitCode !== null) break;
    }
    l.kill();
    assert.fail(`listener never printed ${what}: stdout ${JSON.stringify(l.out)}, stderr ${JSON.stringify(l.stderr)}`);
  };
  const ready = await l.until(/^Ready: /, "its Ready line", 10_000);
  assert.equal(ready.index, 0, "Ready is the first line");
  assert.match(ready.line, /^Ready: http:\/\/127\.0\.0\.1:\d+ \(deliveries: verified with 1 secret; channels: \/telegram \/slack \/whatsapp \/twilio\)$/);
  l.url = ready.line.match(/^Ready: (\S+)/)[1];
  return l;
}

/** gatewayctl against the gateway (`gw.ctl`). */
const ctl = (args) => gw.ctl(args);

/** A tenant whose destination is `url`, with a standard-webhooks source `std`. */
async function tenantTo(name, url, limits = {}) {
  await gw.tenant(name, { destination: { url, secret: SECRET, timeout_ms: 2000 }, limits });
  const r = await gw.admin("PUT", `${name}/sources/std`, { kind: "standard", secrets: [SOURCE_SECRET] });
  assert.equal(r.status, 201, r.text);
}

/** Polls the event log for `id` until `ready(event)` holds. */
async function logged(tenant, id, ready, what) {
  let last;
  for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    last = await gw.admin("GET", `${tenant}/events/${id}`);
    if (last.status === 200 && ready(last.body)) return last.body;
  }
  assert.fail(`event ${id} never ${what}: ${last?.status} ${last?.text}`);
}

test("a delivery signed with the destination's secret is printed verified, with its body, and logged delivered", async () => {
  const l = await listen(["--count", "1"], SECRET);
  await tenantTo("listen-ok", `${l.url}/events`);
  const sent = await ctl(["send-sample", "standard", "--tenant", "listen-ok", "--source", "std"]);
  assert.equal(sent.code, 0, sent.stderr);
  const { match, index } = await l.until(new RegExp(`^${CLOCK}  verified  (evt_[0-9a-f]{32})  (\\S+)  POST /events  \\d+(\\.\\d)? (B|KB)$`), "a verified line");
  const [, id, type] = match;
  assert.equal(await l.exited, 0, "--count 1: it exits after one request");
  // The body follows, as indented JSON.
  const body = JSON.parse(l.lines.slice(index + 1).join("\n"));
  assert.deepEqual([body.id, body.type, body.tenant, body.source], [id, type, "listen-ok", "std"]);
  assert.ok(l.lines.slice(index + 1, -1).every((x) => x.startsWith("  ")), l.out);
  const e = await logged("listen-ok", id, (e) => e.status === "delivered", "delivered");
  assert.equal(e.type, type);
  assert.deepEqual(e.attempts.map((a) => [a.status, a.answer]), [[200, "{}"]]);
  assert.ok(!l.out.includes(SECRET), "the secret is never printed");
});

test("a delivery signed with another secret is REJECTED with a 401, which the event log shows", async () => {
  const l = await listen(["--count", "1"], OTHER);
  await tenantTo("listen-wrong", `${l.url}/events`, { max_delivery_attempts: 1 });
  assert.equal((await ctl(["send-sample", "standard", "--tenant", "listen-wrong", "--source", "std"])).code, 0);
  const { match } = await l.until(new RegExp(`^${CLOCK}  REJECTED  (evt_[0-9a-f]{32})  no signature matches$`), "a REJECTED line");
  assert.equal(await l.exited, 0);
  const e = await logged("listen-wrong", match[1], (e) => e.attempts?.length >= 1, "attempted");
  assert.equal(e.attempts[0].status, 401, JSON.stringify(e.attempts));
  assert.notEqual(e.status, "delivered");
});

test("--status 503 answers every verified delivery with 503, and the gateway retries", async () => {
  // The secret read from stdin this time.
  const l = await listen(["--count", "2", "--status", "503", "--output", "json"], SECRET, { stdin: true });
  await tenantTo("listen-503", `${l.url}/hooks`, { max_delivery_attempts: 2 });
  assert.equal((await ctl(["send-sample", "standard", "--tenant", "listen-503", "--source", "std"])).code, 0);
  assert.equal(await l.exited, 0, l.stderr);
  const rows = l.lines.filter(Boolean).slice(1).map((x) => JSON.parse(x));
  assert.deepEqual(rows.map((r) => [r.kind, r.verified, r.status, r.path]), [["delivery", true, 503, "/hooks"], ["delivery", true, 503, "/hooks"]]);
  assert.equal(rows[0].id, rows[1].id, "one delivery, tried twice");
  assert.equal(rows[0].body.id, rows[0].id);
  assert.ok(Number.isInteger(rows[0].at) && Math.abs(rows[0].at - Date.now() / 1000) < 60, "at is Unix seconds");
  const e = await logged("listen-503", rows[0].id, (e) => e.attempts?.length >= 2, "retried");
  assert.deepEqual(e.attempts.map((a) => a.status), [503, 503]);
});

test("channels whose base_url is the listener get each provider's receipt; the listener prints what was sent, never a token", async () => {
  const l = await listen(["--count", "4"], SECRET);
  const { key } = await gw.tenant("listen-channels");
  const channels = {
    tg: { kind: "telegram", base_url: `${l.url}/telegram`, credentials: { bot_token: tokens.telegram } },
    sl: { kind: "slack", base_url: `${l.url}/slack`, credentials: { bot_token: tokens.slack } },
    wa: { kind: "whatsapp", base_url: `${l.url}/whatsapp`, phone_number_id: "106540352242922", credentials: { access_token: tokens.whatsapp } },
    tw: { kind: "twilio", base_url: `${l.url}/twilio`, account_sid: tokens.twilioSid, from: "+15017122661", credentials: { auth_token: tokens.twilio } },
  };
  for (const [name, doc] of Object.entries(channels)) {
    const r = await gw.admin("PUT", `listen-channels/channels/${name}`, doc);
    assert.equal(r.status, 201, r.text);
  }
  const send = (c, message) => gw.request("POST", `/v1/channels/${c}/messages`, { key, json: message });

  const tg = await send("tg", { conversation_id: "42", type: "quick_reply", text: "Size?", quick_replies: [{ id: "s", title: "S" }, { id: "l", title: "L" }] });
  assert.equal(tg.status, 200, tg.text);
  assert.match(tg.body.provider_message_id, /^\d+$/);
  await l.until(new RegExp(`^${CLOCK}  telegram  sendMessage  chat 42: "Size\\?" \\[S\\] \\[L\\]$`), "the telegram line");

  const sl = await send("sl", { conversation_id: "C123ABC456", type: "text", text: "hi" });
  assert.equal(sl.status, 200, sl.text);
  assert.match(sl.body.provider_message_id, /^\d+\.\d{6}$/);
  await l.until(new RegExp(`^${CLOCK}  slack  chat\\.postMessage  channel C123ABC456: "hi"$`), "the slack line");

  const wa = await send("wa", { conversation_id: "16505551234", type: "text", text: "Your order shipped" });
  assert.equal(wa.status, 200, wa.text);
  assert.match(wa.body.provider_message_id, /^wamid\./);
  await l.until(new RegExp(`^${CLOCK}  whatsapp  text  to 16505551234: "Your order shipped"$`), "the whatsapp line");

  const tw = await send("tw", { conversation_id: "+15558675310", type: "text", text: "Your code is 1234" });
  assert.equal(tw.status, 200, tw.text);
  assert.match(tw.body.provider_message_id, /^SM[0-9a-f]{32}$/);
  await l.until(new RegExp(`^${CLOCK}  twilio  Messages  to \\+15558675310: "Your code is 1234"$`), "the twilio line");

  assert.equal(await l.exited, 0);
  for (const t of [tokens.telegram, tokens.slack, tokens.whatsapp, tokens.twilio, tokens.telegram.split(":")[1]]) assert.ok(!l.out.includes(t), "no token is printed");
});

test("a request a web page could send is refused with 403 and printed as REFUSED; the gateway's own deliveries still verify", async () => {
  const l = await listen(["--count", "1"], SECRET);
  // A page's no-cors POST carries Origin; one on a name rebound to 127.0.0.1 names that host.
  const page = await fetch(`${l.url}/slack/api/chat.postMessage`, {
    method: "POST",
    headers: { origin: "https://evil.example", authorization: "Bearer x", "content-type": "text/plain" },
    body: JSON.stringify({ channel: "C1", text: "spoofed" }),
  });
  assert.equal(page.status, 403);
  await l.until(new RegExp(`^${CLOCK}  REFUSED  browser request  POST /slack/api/chat\\.postMessage  Origin https://evil\\.example \\(403\\)$`), "a REFUSED line");
  const rebound = await new Promise((resolve, reject) => {
    const req = http.request(`${l.url}/events`, { method: "POST", headers: { host: `evil.example:${new URL(l.url).port}` } }, (res) => resolve(res.statusCode));
    req.on("error", reject);
    req.end("{}");
  });
  assert.equal(rebound, 403);
  assert.ok(!l.out.includes("spoofed"), l.out);
  // Neither counts toward --count 1: the gateway's delivery is the one it exits after.
  await tenantTo("listen-browser", `${l.url}/events`);
  assert.equal((await ctl(["send-sample", "standard", "--tenant", "listen-browser", "--source", "std"])).code, 0);
  await l.until(new RegExp(`^${CLOCK}  verified  evt_[0-9a-f]{32}  `), "a verified line");
  assert.equal(await l.exited, 0);
});

test("a host other than this machine needs --insecure; a secret that is not base64 is refused before listening", async () => {
  const run = (args, env = {}) =>
    new Promise((resolve) => execFile(BIN, ["listen", "--port", "0", ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 }, (error, stdout, stderr) => resolve({ code: error ? error.code ?? 1 : 0, stdout, stderr })));
  const open = await run(["--host", "0.0.0.0", "--secret", SECRET]);
  assert.equal(open.code, 1);
  // A secret given as a flag's value works, with a warning naming the safer ways.
  const [warning, error] = open.stderr.trim().split("\n");
  assert.equal(warning, "gatewayctl: warning: a value given to --secret shows in `ps` and shell history: use GATEWAY_DESTINATION_SECRET, or --secret - to read it from stdin");
  assert.match(error, /^gatewayctl: 0\.0\.0\.0 is reachable from other machines.*--insecure/);
  assert.equal(open.stdout, "");
  const bad = await run([], { GATEWAY_DESTINATION_SECRET: "whsec_not*base64" });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^gatewayctl: .*whsec_/);
  assert.ok(!bad.stderr.includes("not*base64"), "the secret is not echoed");
});
