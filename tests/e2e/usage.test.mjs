// The usage API: after a known mix of requests (two keys, OpenAI and Anthropic clients, JSON and
// streamed, an error, a cache hit), `GET /v1/usage` counts exactly what was sent: requests,
// errors, tokens and cost by route, model and key, as JSON and CSV, and the admin API shows the
// same. The counts reach the tenant's Usage object seconds after the last request, with no other
// request following it. Each request's Analytics Engine data point carries the same figures.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { startGateway, planted, assertError } from "../harness.mjs";
import { startLlm } from "../mocks/llm.mjs";
import { startDestination } from "../mocks/destination.mjs";
import { sourceSecrets, sourceDoc } from "../samples.mjs";
import { sign } from "../signers.mjs";

const OPENAI_KEY = "sk-upstream-openai-" + randomBytes(8).toString("hex");
const ANTHROPIC_KEY = "sk-ant-upstream-" + randomBytes(8).toString("hex");
planted.add(OPENAI_KEY);
planted.add(ANTHROPIC_KEY);
let gw, llm, a, b;

before(async () => {
  gw = await startGateway({ seed: false, recordAnalytics: true, extraBindings: { DELIVERY_RETRY_BASE_SECONDS: "1" } });
  llm = await startLlm({ openaiKey: OPENAI_KEY, anthropicKey: ANTHROPIC_KEY });
  a = await gw.tenant("counted");
  const k = await gw.admin("POST", "counted/keys", { name: "second", scopes: ["*"] });
  planted.add(k.body.key);
  b = { key: k.body.key, keyId: k.body.id };
  const r = await gw.admin("PUT", "counted/llm", {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: OPENAI_KEY },
      claude: { kind: "anthropic", base_url: llm.url, api_key: ANTHROPIC_KEY },
    },
    routes: {
      gpt: [{ provider: "oai", model: "gpt-ok" }],
      claude: [{ provider: "claude", model: "claude-ok" }],
      cached: { targets: [{ provider: "oai", model: "cache-ok" }], cache: { ttl_seconds: 60 } },
    },
  });
  assert.equal(r.status, 201, r.text);
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:gpt-ok", JSON.stringify({ input_per_mtok: 2, output_per_mtok: 8 }));
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

/** The report once `done` accepts it (counts arrive a few seconds after the requests). */
async function report(query, done, admin = false) {
  for (let i = 0; ; i++) {
    const r = admin
      ? await gw.admin("GET", `counted/usage?${query}`)
      : await gw.request("GET", `/v1/usage?${query}`, { key: a.key });
    assert.equal(r.status, 200, r.text);
    if (done(r) || i > 150) return r;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("usage counts exactly the requests, errors, tokens and cost that were sent", async () => {
  const clientA = new OpenAI({ apiKey: a.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  const clientB = new OpenAI({ apiKey: b.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  const ask = (c, model, extra = {}) => c.chat.completions.create({ model, max_tokens: 20, messages: [{ role: "user", content: "hi" }], ...extra });
  let cost = 0;
  for (let i = 0; i < 3; i++) {
    const { response } = await clientA.chat.completions.create({ model: "gpt", max_tokens: 20, messages: [{ role: "user", content: "hi" }] }).withResponse();
    cost += Number(response.headers.get("x-gateway-cost-usd"));
  }
  await ask(clientB, "claude");
  await ask(clientB, "claude");
  let streamed = "";
  for await (const chunk of await ask(clientA, "gpt", { stream: true, stream_options: { include_usage: true } })) streamed += chunk.choices[0]?.delta?.content ?? "";
  assert.ok(streamed.length > 0);
  await ask(clientA, "cached");
  await ask(clientA, "cached"); // from the cache
  const bad = await gw.request("POST", "/v1/chat/completions", { key: a.key, json: { model: "gpt", messages: "nope" } });
  assert.equal(bad.status, 400, bad.text);
  // The stream's tokens are what its usage line says.
  const line = await gw.waitForLog((m) => m.includes('"tenant":"counted"') && m.includes('"stream":true'));
  const streamUsage = JSON.parse(line.message).llm_usage;
  cost += streamUsage.cost_usd;

  const byRoute = await report("group_by=route", (r) => r.body.data.find((d) => d.route === "llm")?.requests === 9 && r.body.data.find((d) => d.route === "llm").output_tokens > 0);
  const llmRow = byRoute.body.data.find((d) => d.route === "llm");
  assert.equal(llmRow.requests, 9, JSON.stringify(byRoute.body));
  assert.equal(llmRow.client_errors, 1);
  assert.equal(llmRow.server_errors, 0);
  assert.equal(llmRow.cached, 1);
  // JSON answers are 25 in / 15 out at the stand-in; the cache hit used none.
  assert.equal(llmRow.input_tokens, 6 * 25 + streamUsage.input_tokens);
  assert.equal(llmRow.output_tokens, 6 * 15 + streamUsage.output_tokens);
  assert.ok(Math.abs(llmRow.cost_usd - cost) < 1e-9, `${llmRow.cost_usd} vs ${cost}`);
  assert.equal(typeof llmRow.p50_ms, "number");

  const byModel = (await report("group_by=model,key", () => true)).body.data;
  const row = (model, key) => byModel.find((d) => d.model === model && d.key === key);
  assert.equal(row("gpt-ok", a.keyId).requests, 4);
  assert.equal(row("claude-ok", b.keyId).requests, 2);
  assert.equal(row("claude-ok", b.keyId).input_tokens, 50);
  assert.equal(row(null, a.keyId).client_errors, 1, "a refused request has no model");

  const csv = await report("group_by=route&format=csv", () => true);
  assert.equal(csv.headers.get("content-type"), "text/csv; charset=utf-8");
  const [header, ...rows] = csv.text.trim().split("\n");
  assert.ok(header.startsWith("route,requests,client_errors,server_errors,p50_ms,p95_ms,input_tokens,output_tokens"));
  const llmCsv = rows.find((r) => r.startsWith("llm,")).split(",");
  assert.equal(llmCsv[1], "9");
  // One Analytics Engine data point per request, the tenant its index, with the same figures.
  assert.ok(!gw.logs.some((l) => l.message.includes("analytics_failed")));
  const points = gw.points().filter((p) => p.indexes[0] === "counted" && p.blobs[0] === "llm");
  assert.equal(points.length, 9, JSON.stringify(points));
  const sum = (i) => points.reduce((n, p) => n + p.doubles[i], 0);
  assert.deepEqual([sum(2), sum(3), sum(5)], [llmRow.input_tokens, llmRow.output_tokens, 1]);
  assert.ok(Math.abs(sum(4) - cost) < 1e-9, `${sum(4)} vs ${cost}`);
  const refused = points.filter((p) => p.blobs[1] === "4xx");
  assert.deepEqual(refused.map((p) => [p.doubles[0], p.blobs[4]]), [[400, a.keyId]]);
  const claude = points.filter((p) => p.blobs[3] === "claude-ok");
  assert.deepEqual(claude.map((p) => [p.blobs[2], p.blobs[4]]), [["claude", b.keyId], ["claude", b.keyId]]);
  // The admin API shows the tenant the same.
  const viaAdmin = await report("group_by=route", () => true, true);
  assert.deepEqual(viaAdmin.body.data.find((d) => d.route === "llm"), llmRow);
});

test("webhook events count by source: received, delivered, failed attempts and dead letters", async () => {
  const secret = "whsec_" + randomBytes(32).toString("base64");
  const S = sourceSecrets();
  planted.add(secret);
  planted.add(S.standard);
  const dest = await startDestination(secret);
  // The first event is refused once, then taken; the second is never taken.
  const never = (body) => JSON.stringify(body).includes('"never":true');
  dest.behaviour = (nth, body) => ({ status: never(body) ? 500 : nth === 1 ? 503 : 200 });
  try {
    const t = await gw.tenant("hooked", { destination: { url: dest.url, secret }, limits: { max_delivery_attempts: 2 } });
    assert.equal((await gw.admin("PUT", "hooked/sources/shop", sourceDoc("hooked", "standard", S.standard))).status, 201);
    for (const data of [{ ok: true }, { never: true }]) {
      const body = JSON.stringify({ type: "invoice.paid", data });
      const headers = sign.standard(S.standard, body, { id: "msg_" + randomBytes(6).toString("hex") });
      const r = await gw.request("POST", "/v1/webhooks/hooked/shop", { body, headers: { "content-type": "application/json", ...headers } });
      assert.ok(r.status < 300, r.text);
    }
    // A request with a bad signature is not the tenant's usage.
    const forged = await gw.request("POST", "/v1/webhooks/hooked/shop", { body: "{}", headers: { "content-type": "application/json" } });
    assert.equal(forged.status, 401);
    const done = (r) => r.body.data.some((d) => d.subject === "shop" && d.dead_lettered === 1 && d.delivered === 1);
    let r;
    for (let i = 0; i < 300; i++) {
      r = await gw.request("GET", "/v1/usage?group_by=route,subject", { key: t.key });
      if (done(r)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const row = r.body.data.find((d) => d.route === "webhook" && d.subject === "shop");
    assert.ok(row, JSON.stringify(r.body));
    assert.deepEqual(
      [row.requests, row.client_errors, row.delivered, row.failed, row.dead_lettered],
      [2, 0, 1, 3, 1],
      JSON.stringify(row),
    );
  } finally {
    await dest.close();
  }
});

test("a bad usage query is a 400 that names what is wrong", async () => {
  const r = await gw.request("GET", "/v1/usage?group_by=colour", { key: a.key });
  assertError(assert, r, 400, "invalid_request");
  assert.match(r.body.error.message, /unknown `group_by` `colour`/);
  assertError(assert, await gw.request("GET", "/v1/usage?from=2026-13-45", { key: a.key }), 400, "invalid_request");
  assertError(assert, await gw.request("GET", "/v1/usage"), 401, "authentication_error");
});
