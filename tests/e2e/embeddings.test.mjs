// Embeddings end to end with the official `openai` SDK (which asks for base64 and decodes it):
// OpenAI itself, an Azure deployment and Gemini's batchEmbedContents, through the same aliases,
// fallback, limits and cost accounting as chat; the mock provider's vectors for development.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { startGateway, planted } from "../harness.mjs";
import { startLlm, vector } from "../mocks/llm.mjs";

const KEY = "upstream-embed-" + randomBytes(8).toString("hex");
planted.add(KEY);
let gw, llm, client;

before(async () => {
  gw = await startGateway();
  llm = await startLlm({ openaiKey: KEY, anthropicKey: KEY });
  const t = await gw.tenant("emb");
  const r = await gw.admin("PUT", "emb/llm", {
    providers: {
      oai: { kind: "openai", base_url: `${llm.url}/v1`, api_key: KEY },
      az: { kind: "azure_openai", base_url: llm.url, api_key: KEY },
      gem: { kind: "gemini", base_url: llm.url, api_key: KEY },
      claude: { kind: "anthropic", base_url: llm.url, api_key: KEY },
      mock: { kind: "mock" },
    },
    routes: {
      small: [{ provider: "oai", model: "text-embedding-3-small" }],
      azure: [{ provider: "az", model: "embed-prod" }],
      gecko: [{ provider: "gem", model: "text-embedding-004" }],
      "gem-fb": [{ provider: "gem", model: "fail-500", retries: 0 }, { provider: "az", model: "embed-prod" }],
      claude: [{ provider: "claude", model: "claude-ok" }],
      local: [{ provider: "mock", model: "mock-embed" }],
    },
  });
  assert.equal(r.status, 201, r.text);
  const kv = await gw.mf.getKVNamespace("CONFIG");
  await kv.put("pricing:text-embedding-3-small", JSON.stringify({ input_per_mtok: 0.02, output_per_mtok: 0 }));
  client = new OpenAI({ apiKey: t.key, baseURL: `${gw.url.origin}/v1`, maxRetries: 0 });
});
after(async () => {
  await gw?.stop();
  await llm?.close();
});

test("OpenAI: the request as sent, the vectors decoded by the SDK, usage priced and logged", async () => {
  const r = await client.embeddings.create({ model: "small", input: ["hello", "world!"] }).withResponse();
  assert.deepEqual(r.data.data.map((d) => d.embedding), [vector(0, "hello"), vector(1, "world!")]);
  assert.equal(r.data.usage.prompt_tokens, 8);
  const sent = llm.last();
  assert.equal(sent.path, "/v1/embeddings");
  assert.equal(sent.body.model, "text-embedding-3-small");
  assert.equal(sent.body.encoding_format, "base64", "the SDK's default, passed through");
  assert.equal(r.response.headers.get("x-gateway-cost-usd"), ((8 * 0.02) / 1e6).toFixed(9));
  const id = r.response.headers.get("x-request-id");
  const line = await gw.waitForLog((m) => m.includes(id) && m.includes("llm_usage"));
  assert.equal(JSON.parse(line.message).llm_usage.input_tokens, 8);

  const f = await client.embeddings.create({ model: "small", input: "hello", encoding_format: "float", dimensions: 5 });
  assert.deepEqual(f.data[0].embedding, vector(0, "hello", 5));
});

test("Azure: the deployment's embeddings URL and key header", async () => {
  const r = await client.embeddings.create({ model: "azure", input: "hello" });
  assert.deepEqual(r.data[0].embedding, vector(0, "hello"));
  const sent = llm.last();
  assert.equal(sent.path, "/openai/deployments/embed-prod/embeddings?api-version=2024-10-21");
  assert.equal(sent.headers["api-key"], KEY);
});

test("Gemini: batchEmbedContents, dimensions as outputDimensionality, answered in OpenAI's shape (base64 and float)", async () => {
  const r = await client.embeddings.create({ model: "gecko", input: ["hello", "world!"], dimensions: 4 });
  assert.deepEqual(r.data.map((d) => d.embedding), [vector(0, "hello", 4), vector(1, "world!", 4)]);
  assert.equal(r.object, "list");
  assert.ok(r.usage.prompt_tokens > 0, "estimated: Gemini reports no count");
  const sent = llm.last();
  assert.equal(sent.path, "/v1beta/models/text-embedding-004:batchEmbedContents");
  assert.equal(sent.headers["x-goog-api-key"], KEY);
  assert.deepEqual(sent.body.requests[1], { model: "models/text-embedding-004", content: { parts: [{ text: "world!" }] }, outputDimensionality: 4 });
  const f = await client.embeddings.create({ model: "gecko", input: "hello", encoding_format: "float" });
  assert.deepEqual(f.data[0].embedding, vector(0, "hello"));
});

test("fallback, a target without embeddings, bad input and the mock provider", async () => {
  const r = await client.embeddings.create({ model: "gem-fb", input: "hello" }).withResponse();
  assert.deepEqual(r.data.data[0].embedding, vector(0, "hello"));
  assert.equal(r.response.headers.get("x-gateway-attempts"), "2");
  assert.equal(r.response.headers.get("x-gateway-provider"), "az");

  await assert.rejects(client.embeddings.create({ model: "claude", input: "hello" }), (e) => e.status === 400 && /Anthropic has no embeddings/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: "small", input: [] }), (e) => e.status === 400 && /`input`/.test(e.message));
  await assert.rejects(client.embeddings.create({ model: "gecko", input: [[1, 2, 3]] }), (e) => e.status === 400 && /token ids/.test(e.message));

  const a = await client.embeddings.create({ model: "local", input: ["same", "other", "same"], encoding_format: "float", dimensions: 12 });
  const v = a.data.map((d) => d.embedding);
  assert.equal(v[0].length, 12);
  assert.deepEqual(v[0], v[2]);
  assert.notDeepEqual(v[0], v[1]);
});
