// gatewayctl, the built binary, against the gateway in Miniflare: every command at least once, a
// signed sample of each of the nine source kinds accepted and delivered, errors as one line and
// a non-zero exit, --help on every command, control characters from the gateway escaped, and
// secrets from the environment, a private config file or stdin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { startGateway, planted, ROOT, ADMIN_TOKEN } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { startLlm, ANSI_TEXT } from "../mocks/llm.mjs";
import { KINDS, sourceSecrets, sourceDoc } from "../samples.mjs";
import { sign } from "../signers.mjs";

const BIN = path.join(ROOT, "target", "debug", "gatewayctl");
const T = "cli-acme";
const DEST_SECRET = "whsec_" + randomBytes(24).toString("base64");
planted.add(DEST_SECRET);
const OPENAI_KEY = "sk-cli-" + randomBytes(12).toString("hex");
planted.add(OPENAI_KEY);
const S = sourceSecrets();
for (const s of Object.values(S)) planted.add(s);
const dir = mkdtempSync(path.join(tmpdir(), "gatewayctl-"));
let gw, dest, llm, key;

/** gatewayctl against the gateway (`gw.ctl`): its URL and the admin token in its environment, no config file. */
const ctl = (args, opts) => gw.ctl(args, opts);
const ok = async (args, opts) => {
  const r = await ctl(args, opts);
  assert.equal(r.code, 0, `gatewayctl ${args.join(" ")}: ${r.stderr}`);
  return r;
};
const json = async (args, opts) => JSON.parse((await ok(args, opts)).stdout);
const file = (name, doc) => {
  const p = path.join(dir, name);
  writeFileSync(p, JSON.stringify(doc));
  return p;
};
/** A config file (private unless `mode` says otherwise). */
const config = (name, doc, mode = 0o600) => {
  const p = file(name, doc);
  chmodSync(p, mode);
  return p;
};
// Any raw terminal control character: C0 but newline, DEL, C1.
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
// Any raw invisible format character (bidi overrides and isolates, zero-width, BOM) or line/paragraph separator.
const FORMAT = /[\p{Cf}\p{Zl}\p{Zp}]/u;

before(async () => {
  gw = await startGateway();
  dest = await startDestination(DEST_SECRET);
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: "unused" });
});

after(async () => {
  try {
    await gw?.stop();
  } finally {
    await dest?.close();
    await llm?.close();
  }
});

test("tenants and keys: put, get, mint (shown once), list as a table, revoke", async () => {
  const put = await json(["tenants", "put", T, "--file", file("tenant.json", { name: "Acme", destination: { url: dest.url, secret: DEST_SECRET } })]);
  assert.equal(put.tenant?.name ?? put.name, "Acme");
  const listed = await json(["tenants", "list"]);
  assert.ok(listed.data.some((t) => t.id === T), JSON.stringify(listed));
  const tenantRows = (await ok(["tenants", "list", "--output", "table"])).stdout.trim().split("\n");
  assert.deepEqual([tenantRows[0], tenantRows.includes(T)], ["ID", true]);
  const got = await json(["tenants", "get", T]);
  assert.ok(JSON.stringify(got).includes("Acme"));
  assert.ok(!JSON.stringify(got).includes(DEST_SECRET), "secrets are never shown");
  // Scopes are explicit: a secret key minted without them is refused.
  const minted = await json(["keys", "mint", T, "--scopes", "llm"]);
  key = minted.key;
  planted.add(key);
  assert.deepEqual(minted.scopes, ["llm"]);
  // One object as a table: a FIELD VALUE row per field, lists as compact JSON.
  const mintedRows = (await ok(["keys", "mint", T, "--scopes", "llm,channels", "--output", "table"])).stdout.trim().split("\n");
  assert.match(mintedRows[0], /^FIELD\s+VALUE$/);
  const cells = Object.fromEntries(mintedRows.slice(1).map((r) => r.split(/\s{2,}/)));
  assert.match(cells.key ?? "", /^sk_/, mintedRows.join("\n"));
  assert.equal(cells.scopes, '["llm","channels"]');
  planted.add(cells.key);
  const table = (await ok(["keys", "list", T, "--output", "table"])).stdout;
  const [header, ...rows] = table.trim().split("\n");
  assert.match(header, /^ID\s+NAME\s+SCOPES/);
  assert.ok(rows.some((r) => r.startsWith(minted.id)), table);
  assert.ok(!table.includes(key), "a key is shown once, when minted");
  const second = await json(["keys", "mint", T, "--name", "support bot", "--scopes", "llm,integrations", "--monthly-usd", "25", "--allowed-models", "default,gpt-4o*"]);
  planted.add(second.key);
  const settings = await json(["keys", "get", T, second.id]);
  assert.deepEqual([settings.name, settings.scopes, settings.allowed_models, settings.spend.monthly.limit_usd], ["support bot", ["llm", "integrations"], ["default", "gpt-4o*"], 25]);
  assert.ok(!JSON.stringify(settings).includes(second.key), "get never shows the key");
  const updated = await json(["keys", "update", T, second.id, "--rpm", "30", "--scopes", "llm"]);
  assert.deepEqual([updated.rpm, updated.scopes, updated.name], [30, ["llm"], "support bot"]);
  await ok(["keys", "revoke", T, second.id]);
  const left = await json(["keys", "list", T]);
  assert.equal(left.data.find((k) => k.id === second.id)?.revoked ?? true, true);
});

test("send-sample: each of the nine kinds, signed as its provider signs, is accepted and delivered", async () => {
  for (const kind of KINDS) {
    await ok(["sources", "put", T, kind, "--file", file(`${kind}.json`, sourceDoc(T, kind, S[kind]))]);
  }
  const listed = (await ok(["sources", "list", T, "--output", "table"])).stdout;
  for (const kind of KINDS) assert.match(listed, new RegExp(`\\b${kind}\\b`));
  for (const kind of KINDS) {
    // Twilio signs the URL it calls: the source's public URL (sourceDoc sets one), read from its config.
    const r = await ok(["send-sample", kind, "--tenant", T, "--source", kind, "--secret", S[kind]]);
    assert.match(r.stdout, /^20\d /, `${kind}: ${r.stdout}`);
  }
  // Without --secret, the gateway signs with the source's own secret.
  for (const kind of KINDS) {
    const r = await ok(["send-sample", kind, "--tenant", T, "--source", kind]);
    assert.match(r.stdout, /^20\d /, `${kind}, signed by the gateway: ${r.stdout}`);
  }
  await dest.until(() => dest.delivered.size >= 2 * KINDS.length, 20_000, "eighteen deliveries");
  const sources = new Set([...dest.delivered.values()].map((d) => d[0].source));
  assert.deepEqual([...sources].sort(), [...KINDS].sort());
  const other = await ctl(["send-sample", "github", "--tenant", T, "--source", "stripe"]);
  assert.match(other.stderr, /^gatewayctl: source `stripe` is a "stripe" source, not github\n$/);
  // A wrong secret is refused by the gateway, and said so in one line.
  const bad = await ctl(["send-sample", "stripe", "--tenant", T, "--source", "stripe"], { env: { GATEWAY_SOURCE_SECRET: "whsec_wrong" } });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^gatewayctl: the gateway refused the stripe sample \(401\)\n$/);
});

test("events list and tail, destinations, channels, integrations and llm documents", async () => {
  const events = (await ok(["events", "list", T, "--output", "table"])).stdout;
  assert.match(events.split("\n")[0], /^ID\s+TYPE\s+SOURCE\s+STATUS/);
  assert.ok(events.trim().split("\n").length >= KINDS.length + 1, events);
  const tailed = (await ok(["events", "tail", T, "--count", "3", "--interval", "1"])).stdout.trim().split("\n");
  assert.equal(tailed.length, 3);
  for (const line of tailed) assert.ok(JSON.parse(line).id.startsWith("evt_"));

  const destDoc = { url: dest.url, secret: DEST_SECRET, max_attempts: 1 };
  await ok(["destinations", "put", T, "crm", "--file", file("dest.json", destDoc)]);
  assert.equal((await json(["destinations", "get", T, "crm"])).destination?.url ?? (await json(["destinations", "get", T, "crm"])).url, dest.url);
  assert.match((await ok(["destinations", "list", T, "--output", "table"])).stdout, /crm/);

  const channel = { kind: "telegram", credentials: { bot_token: "123456:" + randomBytes(8).toString("hex") } };
  planted.add(channel.credentials.bot_token);
  await ok(["channels", "put", T, "tg", "--file", file("channel.json", channel)]);
  assert.ok(JSON.stringify(await json(["channels", "list", T])).includes("tg"));
  await ok(["channels", "delete", T, "tg"]);

  const integration = { name: "Echo", base_url: "https://api.example.com", endpoints: { ping: { method: "GET", path: "/ping", mock_response: { ok: true } } } };
  await ok(["integrations", "put", T, "echo", "--file", file("integration.json", integration)]);
  assert.ok(JSON.stringify(await json(["integrations", "get", T, "echo"])).includes("Echo"));
  await ok(["integrations", "delete", T, "echo"]);

  await ok(["llm", "put", T, "--file", file("llm.json", { providers: { mock: { kind: "mock" } }, routes: { default: [{ provider: "mock", model: "mock-echo" }] } })]);
  assert.ok(JSON.stringify(await json(["llm", "get", T])).includes("mock-echo"));
});

test("chat streams the answer; usage counts it", async () => {
  const r = await ok(["chat", "Where is my order?"], { env: { GATEWAY_KEY: key }, admin: false });
  assert.match(r.stdout, /^\[mock\] You said: "Where is my order\?"\. This is turn 1 of our conversation\./);
  // Usage is written after the answer, and the request may be counted before its tokens are
  // (usage.test.mjs waits the same way): read until the chat's model shows its output.
  let usage;
  for (let end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 300))) {
    usage = await json(["usage", "--group-by", "model"], { env: { GATEWAY_KEY: key }, admin: false });
    if (usage.data?.some((row) => row.model === "mock-echo" && row.output_tokens > 0)) break;
  }
  const row = usage.data.find((r) => r.model === "mock-echo");
  assert.ok(row && row.output_tokens > 0, JSON.stringify(usage));
  const table = (await ok(["usage", "--group-by", "model", "--output", "table"], { env: { GATEWAY_KEY: key }, admin: false })).stdout;
  const [header, ...rows] = table.trim().split("\n");
  assert.ok(header.split(/\s+/).includes("MODEL"), header);
  assert.ok(rows.some((r) => r.includes("mock-echo")), table);
  const asAdmin = await json(["usage", "--tenant", T, "--group-by", "model"]);
  assert.ok(asAdmin.data.some((r) => r.model === "mock-echo"));
});

test("dead letters: listed, replayed one by one, or retried in bulk", async () => {
  dest.behaviour = () => ({ status: 410 });
  await ok(["destinations", "put", T, "gone", "--file", file("gone.json", { url: dest.url, secret: DEST_SECRET, max_attempts: 1 })]);
  await ok(["sources", "put", T, "to-gone", "--file", file("to-gone.json", { ...sourceDoc(T, "standard", S.standard), destinations: ["gone"] })]);
  for (let i = 0; i < 2; i++) await ok(["send-sample", "standard", "--tenant", T, "--source", "to-gone", "--secret", S.standard]);
  let letters = [];
  for (let end = Date.now() + 20_000; letters.length < 2 && Date.now() < end; await new Promise((r) => setTimeout(r, 300)))
    letters = (await json(["dead-letters", "list", T])).data.filter((l) => l.id.endsWith(".gone"));
  assert.equal(letters.length, 2, "both dead-lettered");
  dest.behaviour = () => ({ status: 200 });
  await ok(["dead-letters", "replay", T, letters[0].id]);
  await dest.until(() => dest.delivered.has(letters[0].id), 15_000, "the replayed delivery");
  const retry = await ok(["retry", T, "--destination", "gone", "--since", "0", "--wait"]);
  assert.equal(JSON.parse(retry.stdout).retried, 1);
  assert.match(retry.stderr, /\[#{30}\] 1\/1 retried\n$/, "the progress bar ends full");
  assert.ok(dest.delivered.has(letters[1].id), "delivered before the command returned");
});

test("an event type carrying terminal escapes is listed escaped in a table, and as the same value in JSON", async () => {
  // An event type that would write the operator's clipboard (OSC 52) and clear the screen (C1 CSI).
  const type = "\u001b]52;c;aGFja2Vk\u0007\u009b2J";
  await ok(["sources", "put", T, "ansi", "--file", file("ansi.json", sourceDoc(T, "standard", S.standard))]);
  const body = JSON.stringify({ type, data: {} });
  const sent = await gw.request("POST", `/v1/webhooks/${T}/ansi`, { body, headers: { "content-type": "application/json", ...sign.standard(S.standard, body, { id: "msg_ansi" }) } });
  assert.equal(sent.status, 200, sent.text);
  // The event log is written as the event is consumed.
  for (let end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 300)))
    if ((await json(["events", "list", T, "--source", "ansi"])).data?.length) break;
  const table = (await ok(["events", "list", T, "--source", "ansi", "--output", "table"])).stdout;
  assert.ok(!CONTROL.test(table), `raw control characters in the table: ${JSON.stringify(table)}`);
  assert.ok(table.includes("\\u{1b}]52;c;aGFja2Vk\\u{7}\\u{9b}2J"), table);
  // JSON stays JSON: every control character escaped, the value unchanged.
  const listed = (await ok(["events", "list", T, "--source", "ansi"])).stdout;
  assert.ok(!CONTROL.test(listed), `raw control characters in JSON: ${JSON.stringify(listed)}`);
  assert.equal(JSON.parse(listed).data[0].type, type);
});

test("chat shows a model's answer with its control sequences escaped and its newline kept", async () => {
  await ok(["llm", "put", T, "--file", file("llm-ansi.json", { providers: { mock: { kind: "mock" }, oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY } },
    routes: { default: [{ provider: "mock", model: "mock-echo" }], ansi: [{ provider: "oai", model: "ansi" }] } })]);
  const chat = await ok(["chat", "hi", "--model", "ansi"], { env: { GATEWAY_KEY: key }, admin: false });
  assert.ok(!CONTROL.test(chat.stdout), `raw control characters in chat: ${JSON.stringify(chat.stdout)}`);
  assert.equal(chat.stdout, "Hi\\u{1b}]52;c;aGFja2Vk\\u{7} \\u{9b}2J\nbye\\u{7f}\n");
  assert.ok(ANSI_TEXT.includes("\u001b"), "the stand-in sent the raw sequence");
});

test("an error line quoting the gateway shows its control characters escaped", async () => {
  const bad = await ctl(["sources", "put", T, "x", "--file", file("bad-kind.json", { kind: "\u001b]52;c;aGFja2Vk\u0007", secrets: ["s"] })]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
  assert.ok(!CONTROL.test(bad.stderr), `raw control characters in the error: ${JSON.stringify(bad.stderr)}`);
  assert.match(bad.stderr, /unknown variant `\\u\{1b\}\]52;c;aGFja2Vk\\u\{7\}`/);
});

test("secrets come from the environment or one line of stdin (`-`), and stdin is read for one thing only", async () => {
  // The signing secret: from the environment, or one line of stdin with `--secret -`.
  const fromEnv = await ok(["send-sample", "stripe", "--tenant", T, "--source", "stripe"], { env: { GATEWAY_SOURCE_SECRET: S.stripe } });
  assert.match(fromEnv.stdout, /^20\d /);
  const fromStdin = await ok(["send-sample", "stripe", "--tenant", T, "--source", "stripe", "--secret", "-"], { input: S.stripe + "\n" });
  assert.match(fromStdin.stdout, /^20\d /);
  // The admin token and a tenant key: from the environment (as every test here) or stdin.
  const adminIn = await ok(["tenants", "list", "--admin-token", "-"], { admin: false, input: ADMIN_TOKEN + "\n" });
  assert.ok(JSON.parse(adminIn.stdout).data.some((t) => t.id === T));
  const keyIn = await ok(["usage", "--key", "-"], { admin: false, input: key + "\n" });
  assert.ok(Array.isArray(JSON.parse(keyIn.stdout).data));
  // Stdin is read for one thing only.
  const two = await ctl(["sources", "put", T, "x", "--file", "-", "--admin-token", "-"], { admin: false, input: ADMIN_TOKEN + "\n{}" });
  assert.equal(two.code, 1);
  assert.match(two.stderr, /^gatewayctl: only one of .* can be read from stdin/);
  const empty = await ctl(["tenants", "list", "--admin-token", "-"], { admin: false, input: "" });
  assert.match(empty.stderr, /^gatewayctl: no admin token on stdin\n$/);
});

test("a config file other users may open is refused with the chmod to run; a private one is read", async () => {
  const open = config("open.json", { url: gw.url.origin, admin_token: ADMIN_TOKEN }, 0o644);
  const refused = await ctl(["tenants", "list"], { admin: false, env: { GATEWAYCTL_CONFIG: open } });
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `gatewayctl: ${open} is open to other users (mode 644): run chmod 600 ${open}\n`);
  assert.equal(refused.stdout, "");
  chmodSync(open, 0o600);
  const accepted = await ctl(["tenants", "list"], { admin: false, env: { GATEWAYCTL_CONFIG: open } });
  assert.equal(accepted.code, 0, accepted.stderr);
  assert.ok(JSON.parse(accepted.stdout).data.some((t) => t.id === T));
});

test("bidi overrides, zero-width characters and line separators from the gateway are escaped in a table, in JSON and in an error", async () => {
  // An event type that reads "evt.gnp" reversed on screen (RLO), with an isolate, a zero-width space, a BOM and a line separator.
  const type = "evt.\u202egnp\u202c\u2066x\u2069\u200by\ufeff\u2028z\u2029";
  await ok(["sources", "put", T, "bidi", "--file", file("bidi.json", sourceDoc(T, "standard", S.standard))]);
  const body = JSON.stringify({ type, data: {} });
  const sent = await gw.request("POST", `/v1/webhooks/${T}/bidi`, { body, headers: { "content-type": "application/json", ...sign.standard(S.standard, body, { id: "msg_bidi" }) } });
  assert.equal(sent.status, 200, sent.text);
  for (let end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 300)))
    if ((await json(["events", "list", T, "--source", "bidi"])).data?.length) break;
  const table = (await ok(["events", "list", T, "--source", "bidi", "--output", "table"])).stdout;
  assert.ok(!FORMAT.test(table), `raw format characters in the table: ${JSON.stringify(table)}`);
  assert.ok(table.includes("evt.\\u{202e}gnp\\u{202c}\\u{2066}x\\u{2069}\\u{200b}y\\u{feff}\\u{2028}z\\u{2029}"), table);
  const listed = (await ok(["events", "list", T, "--source", "bidi"])).stdout;
  assert.ok(!FORMAT.test(listed), `raw format characters in JSON: ${JSON.stringify(listed)}`);
  assert.ok(listed.includes("evt.\\u202egnp\\u202c"), listed);
  assert.equal(JSON.parse(listed).data[0].type, type);
  const bad = await ctl(["sources", "put", T, "x", "--file", file("bad-bidi.json", { kind: "\u202ekcatta", secrets: ["s"] })]);
  assert.equal(bad.code, 1);
  assert.ok(!FORMAT.test(bad.stderr), `raw format characters in the error: ${JSON.stringify(bad.stderr)}`);
  assert.match(bad.stderr, /unknown variant `\\u\{202e\}kcatta`/);
});

test("a secret given as a flag's value still works, with a warning naming the safer ways", async () => {
  const warning = (flag, env) => `gatewayctl: warning: a value given to ${flag} shows in \`ps\` and shell history: use ${env}, or ${flag} - to read it from stdin\n`;
  const admin = await ok(["tenants", "list", "--admin-token", ADMIN_TOKEN], { admin: false });
  assert.equal(admin.stderr, warning("--admin-token", "GATEWAY_ADMIN_TOKEN"));
  assert.ok(JSON.parse(admin.stdout).data.some((t) => t.id === T));
  const usage = await ok(["usage", "--key", key], { admin: false });
  assert.equal(usage.stderr, warning("--key", "GATEWAY_KEY"));
  const signed = await ok(["send-sample", "stripe", "--tenant", T, "--source", "stripe", "--secret", S.stripe]);
  assert.equal(signed.stderr, warning("--secret", "GATEWAY_SOURCE_SECRET"));
  // From the environment or stdin: no warning.
  assert.equal((await ok(["tenants", "list"])).stderr, "");
  assert.equal((await ok(["tenants", "list", "--admin-token", "-"], { admin: false, input: ADMIN_TOKEN + "\n" })).stderr, "");
  assert.equal((await ok(["send-sample", "stripe", "--tenant", T, "--source", "stripe"], { env: { GATEWAY_SOURCE_SECRET: S.stripe } })).stderr, "");
});

test("a secret typed at a terminal for `-` is not echoed", async () => {
  // `script` runs gatewayctl on a pseudo-terminal that echoes input, as a terminal does.
  const env = { PATH: process.env.PATH, GATEWAYCTL_CONFIG: path.join(dir, "none.json"), GATEWAY_URL: gw.url.origin };
  const child = spawn("script", ["-q", "-e", "-E", "always", "-c", `${BIN} tenants list --admin-token -`, "/dev/null"], { env });
  let screen = "";
  child.stdout.on("data", (d) => (screen += d));
  const exited = new Promise((resolve) => child.on("close", resolve));
  // Type the token once gatewayctl is waiting for it (its prompt, or a second).
  for (let end = Date.now() + 1000; Date.now() < end && !/token/i.test(screen); ) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 200));
  child.stdin.write(ADMIN_TOKEN + "\n");
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => (child.kill(), r("timeout")), 30_000))]);
  assert.equal(code, 0, screen);
  assert.ok(!screen.includes(ADMIN_TOKEN), `the token was echoed: ${JSON.stringify(screen)}`);
  assert.ok(screen.includes(`"${T}"`), screen);
});

test("plain http to a host other than this machine is refused, since it would carry the token in the clear, unless --insecure", async () => {
  const far = "http://gateway.invalid:8787";
  const refused = await ctl(["tenants", "list", "--url", far]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `gatewayctl: ${far} is plain http: credentials would cross the network unencrypted; use https://, or --insecure (GATEWAY_INSECURE=1) on a network you trust\n`);
  // Also when the URL comes from the environment; --insecure or GATEWAY_INSECURE=1 lets it through (to a host that does not exist).
  assert.equal((await ctl(["tenants", "list"], { env: { GATEWAY_URL: far } })).stderr, refused.stderr);
  assert.match((await ctl(["tenants", "list", "--url", far, "--insecure"])).stderr, /^gatewayctl: could not reach the gateway/);
  assert.match((await ctl(["tenants", "list", "--url", far], { env: { GATEWAY_INSECURE: "1" } })).stderr, /^gatewayctl: could not reach the gateway/);
  // A user name in the URL is not a way around it, nor is it echoed.
  const masked = await ctl(["tenants", "list", "--url", `http://127.0.0.1:pw@gateway.invalid:8787`]);
  assert.equal(masked.stderr, refused.stderr);
  // The loopback gateway of `make dev` stays plain http.
  const local = await ok(["tenants", "list", "--url", `http://localhost:${gw.url.port}`]);
  assert.ok(JSON.parse(local.stdout).data.some((t) => t.id === T));
});

test("a config file in a directory other users may write is refused with the chmod to run", async () => {
  const shared = path.join(dir, "shared");
  mkdirSync(shared, { mode: 0o700 });
  const cfg = config("shared/config.json", { url: gw.url.origin, admin_token: ADMIN_TOKEN });
  chmodSync(shared, 0o777);
  const refused = await ctl(["tenants", "list"], { admin: false, env: { GATEWAYCTL_CONFIG: cfg } });
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `gatewayctl: ${shared} is writable by other users (mode 777), who could swap the config file: run chmod go-w ${shared}\n`);
  assert.equal(refused.stdout, "");
  chmodSync(shared, 0o755);
  assert.equal((await ctl(["tenants", "list"], { admin: false, env: { GATEWAYCTL_CONFIG: cfg } })).code, 0);
});

test("a config file owned by another user is refused", { skip: process.getuid?.() !== 0 && "giving a file away needs root" }, async () => {
  const cfg = config("theirs.json", { url: gw.url.origin, admin_token: ADMIN_TOKEN });
  chownSync(cfg, 4242, 4242);
  const refused = await ctl(["tenants", "list"], { admin: false, env: { GATEWAYCTL_CONFIG: cfg } });
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr, `gatewayctl: ${cfg} belongs to uid 4242, not to you (uid ${process.getuid()}): use a config file of your own\n`);
  assert.equal(refused.stdout, "");
});

test("errors are one line and a non-zero exit; --help on every command", async () => {
  const cases = [
    [["tenants", "delete", T], /--yes/],
    [["send-sample", "fax", "--tenant", T, "--source", "x", "--secret", "-"], /unknown kind `fax`/, "s\n"],
    [["tenants", "get", "nobody-here"], /^gatewayctl: 404: /],
    [["sources", "put", T, "x", "--file", path.join(dir, "missing.json")], /missing\.json/],
  ];
  for (const [args, message, input] of cases) {
    const r = await ctl(args, { input });
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const noToken = await ctl(["tenants", "get", T], { admin: false, env: { GATEWAYCTL_CONFIG: path.join(dir, "none.json") } });
  assert.match(noToken.stderr, /needs the admin token: GATEWAY_ADMIN_TOKEN, admin_token in the config file, or --admin-token - to read it from stdin\n$/);
  // A config file supplies what flags and the environment do not; a flag wins over it.
  const cfg = config("config.json", { url: gw.url.origin, admin_token: ADMIN_TOKEN });
  const fromFile = await ctl(["tenants", "list"], { admin: false, env: { GATEWAYCTL_CONFIG: cfg, GATEWAY_URL: "" } });
  assert.equal(fromFile.code, 0, fromFile.stderr);
  assert.ok(JSON.parse(fromFile.stdout).data.some((t) => t.id === T));
  const flagWins = await ctl(["tenants", "list", "--admin-token", "wrong-token"], { admin: false, env: { GATEWAYCTL_CONFIG: cfg } });
  assert.match(flagWins.stderr, /\ngatewayctl: 401: [^\n]*\n$/);
  const commands = ["tenants", "keys", "sources", "destinations", "channels", "integrations", "llm", "send-sample", "events", "dead-letters", "retry", "chat", "usage", "listen"];
  for (const c of [[], ...commands.map((c) => [c])]) {
    const r = await ok([...c, "--help"]);
    assert.match(r.stdout, /Usage: gatewayctl/);
  }
  await ok(["tenants", "delete", T, "--yes"]);
  assert.equal((await ctl(["tenants", "get", T])).code, 1);
});

test("the CLI walk-through without a destination: the sample is logged `no_destination`, and no dead letter is made", async () => {
  const T = "nameonly";
  const put = await gw.admin("PUT", T, { name: "Name Only" });
  assert.equal(put.status, 201, put.text);
  assert.equal(put.body.destination, undefined);
  assert.equal((await gw.admin("PUT", `${T}/sources/stripe`, { kind: "stripe", secrets: [S.stripe] })).status, 201);
  const sent = await ctl(["send-sample", "stripe", "--tenant", T, "--source", "stripe", "--secret", "-"], { input: S.stripe });
  assert.equal(sent.code, 0, sent.stderr);
  assert.match(sent.stdout, /^200 /);
  let rows = [];
  for (let i = 0; i < 100 && !rows.some((r) => r.includes("no_destination")); i++) {
    const listed = await ctl(["events", "list", T, "--output", "table"]);
    assert.equal(listed.code, 0, listed.stderr);
    rows = listed.stdout.trim().split("\n").slice(1);
    if (!rows.length) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(rows.length, 1, rows.join("\n"));
  assert.match(rows[0], /stripe\.payment_intent\.succeeded\s+stripe\s+no_destination/);
  assert.deepEqual((await gw.admin("GET", `${T}/dead-letters`)).body.data, []);
});
