// Fixes from the security review that no feature suite covers: the shipped configuration serves no
// demo page; a source's Meta handshake stops answering guesses of its verify token; platform keys
// go only to official provider URLs; upstream error text stays out of logs; tokens per minute hold
// under concurrency; a deleted tenant leaves nothing for one created again under its id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { startGateway, assertError, planted, ROOT } from "../harness.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc, sample, resign } from "../samples.mjs";

const VERIFY_TOKEN = "meta-verify-" + randomBytes(8).toString("hex");
const PLATFORM_KEY = "sk-platform-" + randomBytes(12).toString("hex");
planted.add(VERIFY_TOKEN);
planted.add(PLATFORM_KEY);

/** `[vars] GATEWAY_ENV` as wrangler.toml ships it to `wrangler deploy`. */
function shippedEnv() {
  const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  const vars = toml.split(/^\[vars\]$/m)[1]?.split(/^\[/m)[0] ?? "";
  return /^GATEWAY_ENV\s*=\s*"([^"]*)"/m.exec(vars)?.[1];
}

let gw;
before(async () => {
  gw = await startGateway({ extraBindings: { GATEWAY_ENV: shippedEnv(), OPENAI_API_KEY: PLATFORM_KEY } });
  await gw.tenant("meta");
  for (const source of ["wa", "wa2"]) {
    const r = await gw.admin("PUT", `meta/sources/${source}`, { kind: "whatsapp", secrets: ["app-secret-" + source], verify_token: VERIFY_TOKEN });
    assert.equal(r.status, 201, r.text);
  }
});
after(() => gw?.stop());

test("the configuration wrangler deploy ships serves no demo page", async () => {
  assert.equal(shippedEnv(), "production");
  assertError(assert, await gw.request("GET", "/demo"), 404, "not_found");
  assert.equal((await gw.request("GET", "/widget.js")).status, 200, "the widget itself is served");
});

const handshake = (source, token) =>
  gw.request("GET", `/v1/webhooks/meta/${source}?hub.mode=subscribe&hub.verify_token=${encodeURIComponent(token)}&hub.challenge=1158201444`);

test("a source's Meta handshake locks after 10 failed guesses, the right token included", async () => {
  const ok = await handshake("wa", VERIFY_TOKEN);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.text, "1158201444");
  for (let i = 0; i < 10; i++) assertError(assert, await handshake("wa", `guess-${i}`), 403, "permission_denied");
  for (const token of ["guess-10", VERIFY_TOKEN]) {
    const locked = await handshake("wa", token);
    assertError(assert, locked, 429, "rate_limited");
    assert.ok(Number(locked.headers.get("retry-after")) > 0);
    assert.ok(!locked.text.includes("1158201444"), "no challenge is echoed while locked");
  }
  // Counted per source: the tenant's other source still answers.
  assert.equal((await handshake("wa2", VERIFY_TOKEN)).status, 200);
});

test("the platform's provider key goes only to the provider's official URL", async () => {
  const { key } = await gw.tenant("llmy");
  const r = await gw.admin("PUT", "llmy/llm", { providers: { oai: { kind: "openai", base_url: "http://127.0.0.1:9/v1" } }, routes: { m: [{ provider: "oai", model: "gpt" }] } });
  assertError(assert, r, 422, "validation_error");
  assert.match(r.body.error.message, /`providers.oai.api_key` is required with a custom base_url/);

  // A record written before this check (straight into KV) still never sends the key elsewhere.
  const seen = [];
  const up = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    req.resume();
    res.writeHead(401, { "content-type": "application/json" });
    res.end('{"error":{"message":"no key","type":"invalid_request_error"}}');
  });
  await new Promise((ok) => up.listen(0, "127.0.0.1", ok));
  try {
    const kv = await gw.mf.getKVNamespace("CONFIG");
    await kv.put("llm:llmy", JSON.stringify({ providers: { oai: { kind: "openai", base_url: `http://127.0.0.1:${up.address().port}/v1` } }, routes: { m: [{ provider: "oai", model: "gpt", retries: 0 }] } }));
    const chat = await gw.request("POST", "/v1/chat/completions", { key, json: { model: "m", messages: [{ role: "user", content: "hi" }] } });
    assert.equal(chat.status, 502, chat.text);
    assert.equal(seen.length, 1);
    assert.equal(seen[0], undefined, "no authorization header at all");
  } finally {
    await new Promise((ok) => up.close(ok));
  }
});

test("upstream error text reaches neither logs nor the client, except the client's own refused request", async () => {
  const { key } = await gw.tenant("echoes");
  const echoed = "echoed-prompt-" + randomBytes(8).toString("hex");
  planted.add(echoed); // gw.stop() fails the file if it shows up in any log line or response
  const up = http.createServer((req, res) => {
    const body = [];
    req.on("data", (c) => body.push(c));
    req.on("end", () => {
      const { model } = JSON.parse(Buffer.concat(body).toString());
      const [status, error] = model === "refuse" ? [400, { type: "invalid_request_error", code: "bad_role", message: "Invalid role in messages[0]" }] : [503, { type: "overloaded_error", message: `overloaded while reading: ${echoed}` }];
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ error }));
    });
  });
  await new Promise((ok) => up.listen(0, "127.0.0.1", ok));
  try {
    const provider = { kind: "openai_compatible", base_url: `http://127.0.0.1:${up.address().port}/v1`, api_key: "own-key-" + randomBytes(6).toString("hex") };
    const put = await gw.admin("PUT", "echoes/llm", { providers: { p: provider }, routes: { busy: [{ provider: "p", model: "busy", retries: 0 }], refuse: [{ provider: "p", model: "refuse", retries: 0 }] } });
    assert.equal(put.status, 201, put.text);
    const busy = await gw.request("POST", "/v1/chat/completions", { key, json: { model: "busy", messages: [{ role: "user", content: "hi" }] } });
    assert.equal(busy.status, 502, busy.text);
    assert.ok(!busy.text.includes(echoed));
    assert.match(busy.body.error.message, /HTTP 503 \(overloaded_error\)/);
    const refused = await gw.request("POST", "/v1/chat/completions", { key, json: { model: "refuse", messages: [{ role: "user", content: "hi" }] } });
    assert.equal(refused.status, 400, refused.text);
    assert.match(refused.body.error.message, /Invalid role in messages\[0\]/);
    const line = await gw.waitForLog((m) => m.includes("llm_upstream_error") && m.includes('"status":503'));
    assert.match(line.message, /"code":"overloaded_error"/);
    assert.deepEqual(gw.leaks(), []);
  } finally {
    await new Promise((ok) => up.close(ok));
  }
});

test("tokens per minute hold under concurrency: each request is charged and capped at what it may produce", async () => {
  const { key } = await gw.tenant("tpm");
  const sent = [];
  const up = http.createServer((req, res) => {
    const body = [];
    req.on("data", (c) => body.push(c));
    req.on("end", () => {
      const b = JSON.parse(Buffer.concat(body).toString());
      sent.push(b);
      // A model that writes as much as it is allowed to.
      const out = b.max_tokens ?? b.max_completion_tokens ?? 16000;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "c", object: "chat.completion", created: 1, model: b.model, choices: [{ index: 0, finish_reason: "length", message: { role: "assistant", content: "x" } }], usage: { prompt_tokens: 10, completion_tokens: out, total_tokens: 10 + out } }));
    });
  });
  await new Promise((ok) => up.listen(0, "127.0.0.1", ok));
  try {
    const provider = { kind: "openai_compatible", base_url: `http://127.0.0.1:${up.address().port}/v1`, api_key: "own-" + randomBytes(6).toString("hex") };
    const put = await gw.admin("PUT", "tpm/llm", { providers: { p: provider }, routes: { m: [{ provider: "p", model: "m", retries: 0 }] }, limits: { tpm: 10000, max_output_tokens: 1000 } });
    assert.equal(put.status, 201, put.text);
    const results = await Promise.all(Array.from({ length: 50 }, () => gw.request("POST", "/v1/chat/completions", { key, json: { model: "m", messages: [{ role: "user", content: "hi" }] } })));
    const ok = results.filter((r) => r.status === 200);
    assert.ok(results.every((r) => r.status === 200 || r.status === 429), results.map((r) => r.status).join());
    assert.equal(sent.length, ok.length);
    for (const b of sent) assert.equal(b.max_tokens, 1000, "an uncapped request is sent the ceiling");
    const produced = ok.reduce((n, r) => n + r.body.usage.total_tokens, 0);
    assert.ok(produced <= 10000, `produced ${produced} tokens against a limit of 10000`);
    assert.ok(ok.length >= 8, `${ok.length} admitted`);
  } finally {
    await new Promise((ok) => up.close(ok));
  }
});

test("a tenant deleted and created again under its id starts from nothing", async () => {
  const T = "phoenix";
  const ORIGIN = "https://phoenix.example.com";
  const DEST_SECRET = "whsec_" + randomBytes(32).toString("base64");
  const S = sourceSecrets();
  planted.add(DEST_SECRET);
  planted.add(S.github);
  const dest = await startDestination(DEST_SECRET);
  dest.behaviour = () => ({ status: 410 }); // refused for good: dead-lettered at once
  const svc = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"reply":"noted"}');
    });
  });
  await new Promise((ok) => svc.listen(0, "127.0.0.1", ok));
  const doc = { allowed_origins: [ORIGIN], destination: { url: dest.url, secret: DEST_SECRET, timeout_ms: 500 }, assistant: { chat_url: `http://127.0.0.1:${svc.address().port}/chat` } };
  const setUp = async () => {
    await gw.tenant(T, doc);
    assert.equal((await gw.admin("PUT", `${T}/sources/github`, sourceDoc(T, "github", S.github))).status, 201);
    return (await gw.admin("POST", `${T}/widget-keys`)).body.key;
  };
  const letters = async () => (await gw.admin("GET", `${T}/dead-letters`)).body.data ?? [];
  const post = (s) => gw.request("POST", `/v1/webhooks/${T}/github`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });
  const widget = (pk, path, init = {}) => gw.request(init.json ? "POST" : "GET", `/v1/widget/${path}${path.includes("?") ? "&" : "?"}key=${pk}`, { ...init, headers: { origin: ORIGIN, "x-visitor-id": "v" } });
  try {
    // The first tenant leaves a dead letter, a dedupe id and a conversation.
    const pk = await setUp();
    const s = sample(T, S, "github");
    assert.equal((await post(s)).status, 200);
    let letter;
    for (let i = 0; i < 100 && !letter; i++) {
      letter = (await letters())[0];
      if (!letter) await new Promise((ok) => setTimeout(ok, 100));
    }
    assert.ok(letter, "the refused event was dead-lettered");
    const chat = await widget(pk, "chat", { json: { message: "remember me" } });
    assert.equal(chat.status, 200, chat.text);
    const conversation = chat.headers.get("x-conversation-id");
    assert.equal((await widget(pk, `conversations/${conversation}`)).body.messages.length, 2);

    assertError(assert, await gw.admin("DELETE", T), 400, "invalid_request");
    assert.equal((await gw.request("DELETE", `/v1/admin/tenants/${T}?confirm=${T}`, { admin: true })).status, 204);

    // The same id again, with the same source and secret.
    const pk2 = await setUp();
    assert.deepEqual(await letters(), [], "no dead letters to replay");
    assertError(assert, await gw.admin("POST", `${T}/dead-letters/${letter.id}/replay`), 404, "not_found");
    const again = await post({ ...s, headers: resign(S, "github", s) });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.duplicates, 0, "the old tenant's dedupe ids are gone");
    assertError(assert, await widget(pk2, `conversations/${conversation}`), 404, "not_found");
    assertError(assert, await widget(pk2, "chat", { json: { message: "hi", conversation_id: conversation } }), 400, "invalid_request");
  } finally {
    await dest.close();
    await new Promise((ok) => svc.close(ok));
  }
});
