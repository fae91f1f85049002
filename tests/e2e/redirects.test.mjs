// Redirects from third parties: a request that carries a credential (an LLM provider's key, an
// integration's token or API key, an OAuth client secret, a channel's bot token, a destination's
// signature) is never sent again to another origin, whatever the upstream answers; the 3xx is
// that upstream's failure in the route's own format. Only integrations follow a redirect, and
// only within their own origin.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { startGateway, assertError, planted } from "../harness.mjs";
import { startRedirectPair } from "../mocks/redirect.mjs";
import { sourceSecrets, sourceDoc, sample, eventId } from "../samples.mjs";

const T = "moved";
const secret = (prefix) => {
  const s = prefix + randomBytes(12).toString("hex");
  planted.add(s);
  return s;
};
const K = { openai: secret("sk-oa-"), anthropic: secret("sk-ant-"), azure: secret("az-"), gemini: secret("AIza-"), bearer: secret("bearer-"), apiKey: secret("key-"), client: secret("client-"), slack: secret("xoxb-"), dest: "whsec_" + randomBytes(24).toString("base64") };
planted.add(K.dest);
const S = sourceSecrets();
for (const s of Object.values(S)) planted.add(s);
const CREDENTIAL_HEADERS = ["authorization", "api-key", "x-api-key", "x-goog-api-key", "webhook-signature"];
let gw, front, sink, key;

before(async () => {
  gw = await startGateway({ seed: false });
  ({ front, sink } = await startRedirectPair());
  ({ key } = await gw.tenant(T, { destination: { url: `${front.url}/cross/hooks`, secret: K.dest } }));
  const cross = `${front.url}/cross`;
  const llm = {
    providers: {
      oa: { kind: "openai", base_url: `${cross}/v1`, api_key: K.openai },
      oaSame: { kind: "openai", base_url: `${front.url}/same/v1`, api_key: K.openai },
      ant: { kind: "anthropic", base_url: cross, api_key: K.anthropic },
      az: { kind: "azure_openai", base_url: cross, api_key: K.azure },
      gem: { kind: "gemini", base_url: cross, api_key: K.gemini },
      m: { kind: "mock" },
    },
    routes: {
      oa: [{ provider: "oa", model: "gpt-4o-mini", retries: 0 }],
      same: [{ provider: "oaSame", model: "gpt-4o-mini", retries: 0 }],
      ant: [{ provider: "ant", model: "claude-sonnet-4-5", retries: 0 }],
      az: [{ provider: "az", model: "gpt-4o", retries: 0 }],
      gem: [{ provider: "gem", model: "gemini-2.5-flash", retries: 0 }],
      fallover: [{ provider: "oa", model: "gpt-4o-mini", retries: 0 }, { provider: "m", model: "mock-echo" }],
    },
  };
  const api = (base_url, auth, endpoints = { get: { method: "GET", path: "/contacts/1" } }) => ({ name: "Moved API", base_url, auth, timeout_ms: 3000, endpoints });
  const puts = {
    llm,
    "integrations/bearer": api(`${cross}/api`, { type: "bearer", token: K.bearer }),
    "integrations/keyed": api(`${cross}/api`, { type: "api_key", in: "header", name: "x-api-key", api_key: K.apiKey }),
    "integrations/oauth": api(`${front.url}/final/api`, { type: "oauth2", grant: "client_credentials", token_url: `${front.url}/cross307/token`, client_id: "gateway", client_secret: K.client }),
    "integrations/same": api(`${front.url}/same/api`, { type: "bearer", token: K.bearer }, {
      get: { method: "GET", path: "/contacts/1" },
      create: { method: "POST", path: "/contacts", body: { name: "{{input.name}}" } },
    }),
    "channels/sl": { kind: "slack", base_url: cross, credentials: { bot_token: K.slack } },
    "sources/std": sourceDoc(T, "standard", S.standard),
  };
  for (const [path, doc] of Object.entries(puts)) {
    const r = await gw.admin("PUT", `${T}/${path}`, doc);
    assert.equal(r.status, 201, `${path}: ${r.text}`);
  }
});
after(async () => {
  await gw?.stop();
  await front?.close();
  await sink?.close();
});

/** What the sink (the other origin) received since `from`: each credential header, each secret. */
function credentialsAtSink(from) {
  return sink.requests.slice(from).flatMap((q) => {
    const where = `${q.method} ${q.path}`;
    const found = CREDENTIAL_HEADERS.filter((h) => h in q.headers).map((h) => `${where}: ${h}`);
    for (const s of Object.values(K)) if (JSON.stringify(q).includes(s)) found.push(`${where}: a credential in the request`);
    return found;
  });
}

/** Runs `fn`: its result, and what reached the other origin meanwhile. */
async function watched(fn) {
  const from = sink.requests.length;
  const frontFrom = front.requests.length;
  const result = await fn();
  await new Promise((r) => setTimeout(r, 100));
  return { result, credentials: credentialsAtSink(from), sent: sink.requests.length - from, called: front.requests.length > frontFrom };
}

/** The other origin saw no credential and no request at all, in any of `runs`. */
function assertNothingFollowed(...runs) {
  assert.deepEqual(runs.flatMap((r) => r.credentials), [], "no credential reached the other origin");
  assert.deepEqual(runs.map((r) => r.sent), runs.map(() => 0), "nothing was sent to the other origin");
  assert.ok(runs.every((r) => r.called), "the upstream was called");
}

/** `fn`'s result, once the other origin saw nothing of it. */
async function nothingFollowed(fn) {
  const run = await watched(fn);
  assertNothingFollowed(run);
  return run.result;
}

const chat = (model, stream = false) =>
  gw.request("POST", "/v1/chat/completions", { key, json: { model, stream, messages: [{ role: "user", content: "hi" }] } });

test("an LLM provider's 302 to another origin is not followed: its key stays, and the client gets a 502", async () => {
  const runs = [];
  for (const model of ["oa", "ant", "az", "gem"]) for (const stream of [false, true]) runs.push({ model, stream, ...(await watched(() => chat(model, stream))) });
  assertNothingFollowed(...runs);
  for (const { model, stream, result: r } of runs) {
    assert.equal(r.status, 502, `${model} stream=${stream}: ${r.text}`);
    assert.match(r.body.error.message, /answered 302/, `${model} stream=${stream}`);
  }
});

test("an LLM provider's redirect falls over to the route's next target", async () => {
  const client = new OpenAI({ apiKey: key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
  const { data, response } = await nothingFollowed(() =>
    client.chat.completions.create({ model: "fallover", messages: [{ role: "user", content: "hi" }] }).withResponse());
  assert.equal(response.headers.get("x-gateway-provider"), "m");
  assert.equal(data.object, "chat.completion");
});

test("an LLM provider's redirect within its own origin is not followed either", async () => {
  const from = front.requests.length;
  const r = await chat("same");
  assert.equal(r.status, 502, r.text);
  assert.deepEqual(front.requests.slice(from).map((q) => q.path), ["/same/v1/chat/completions"]);
});

const run = (id, endpoint, input = {}) => gw.request("POST", `/v1/integrations/${id}/${endpoint}`, { key, json: { input } });

test("an integration's 302 to another origin is an upstream error in its envelope, its bearer token or API key kept", async () => {
  const runs = [await watched(() => run("bearer", "get")), await watched(() => run("keyed", "get"))];
  assertNothingFollowed(...runs);
  for (const { result: r } of runs) {
    assert.equal(r.status, 502, r.text);
    assert.equal(r.body.success, false);
    assert.equal(r.body.error.code, "upstream_error");
    assert.equal(r.body.status_code, 302);
  }
});

test("an OAuth token endpoint's 307 to another origin does not carry the client secret there", async () => {
  const r = await nothingFollowed(() => run("oauth", "get"));
  assertError(assert, r, 502, "upstream_error");
  assert.match(r.body.error.message, /token endpoint answered 307/);
  assert.ok(!front.requests.some((q) => q.path.startsWith("/final/")), "the API was not called without a token");
});

test("an integration's redirect within its own origin is followed with its credentials; a POST becomes a GET", async () => {
  const from = front.requests.length;
  const r = await run("same", "get");
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.success, true);
  assert.deepEqual(r.body.data, { ok: true, contact: { name: "Ada" } });
  const [moved, landed] = front.requests.slice(from);
  assert.deepEqual([moved.path, landed.path], ["/same/api/contacts/1", "/final/api/contacts/1"]);
  assert.equal(landed.headers.authorization, `Bearer ${K.bearer}`);

  const at = front.requests.length;
  const p = await run("same", "create", { name: "Ada" });
  assert.equal(p.status, 200, p.text);
  const [posted, got] = front.requests.slice(at);
  assert.deepEqual([posted.method, posted.body], ["POST", '{"name":"Ada"}']);
  assert.deepEqual([got.method, got.path, got.body, got.headers["content-type"]], ["GET", "/final/api/contacts", "", undefined]);
});

test("a channel provider's 302 to another origin is a failed send; the bot token stays", async () => {
  const r = await nothingFollowed(() => gw.request("POST", "/v1/channels/sl/messages", { key, json: { conversation_id: "C1", type: "text", text: "hi" } }));
  assertError(assert, r, 502, "upstream_error");
  assert.match(r.body.error.message, /302/);
});

test("a destination's 302 is a failed delivery, dead-lettered, never followed", async () => {
  const s = sample(T, S, "standard");
  const id = eventId(T, "std", s.pid);
  const from = sink.requests.length;
  const delivery = await watched(async () => {
    const r = await gw.request("POST", `/v1/webhooks/${T}/std`, { body: s.body, headers: { "content-type": "application/json", ...s.headers } });
    assert.equal(r.status, 200, r.text);
    for (let end = Date.now() + 20_000; Date.now() < end && sink.requests.length === from; ) {
      const found = (await gw.admin("GET", `${T}/dead-letters`)).body.data?.find((l) => l.id === id);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 300));
    }
  });
  assertNothingFollowed(delivery);
  const letter = delivery.result;
  assert.ok(letter, "the delivery was dead-lettered");
  assert.match(letter.last_error, /destination answered 302/);
  assert.equal(front.requests.filter((q) => q.path === "/cross/hooks").length, 1, "one attempt: a redirect is not retried");
});
