// A tenant's remote MCP server behind its MCP endpoint, with the official TypeScript SDK on both
// sides: the gateway lists the server's tools as `{server}__{tool}`, calls them with the bearer
// token the tenant registered (the client never holds it, and no answer or log line shows it),
// keeps one session per isolate and opens a new one when the server forgets it, and applies the
// key's allowlist and the tenant's guardrails to them as to integrations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startGateway, planted } from "../harness.mjs";
import { startMcpServer } from "../mocks/mcp_server.mjs";

const TOKEN = "docs-token-" + randomBytes(8).toString("hex");
planted.add(TOKEN);
let gw, upstream;

before(async () => {
  gw = await startGateway();
  upstream = await startMcpServer({ token: TOKEN });
  await gw.tenant("remote");
  const llm = await gw.admin("PUT", "remote/llm", {
    providers: { echo: { kind: "mock" } },
    routes: { echo: [{ provider: "echo", model: "mock-echo" }] },
    guardrails: [{ detector: "email", request: "redact" }],
  });
  assert.equal(llm.status, 201, llm.text);
  const put = await gw.admin("PUT", "remote/mcp-servers/docs", {
    url: upstream.url,
    auth: { type: "bearer", token: TOKEN },
    description: "Product documentation search",
  });
  assert.equal(put.status, 201, put.text);
  assert.ok(!put.text.includes(TOKEN), "the token is not shown back");
});
after(async () => {
  await gw?.stop();
  await upstream?.close();
});

async function mint(allowed_tools) {
  const k = await gw.admin("POST", "remote/keys", { scopes: ["mcp"], allowed_tools });
  assert.equal(k.status, 201, k.text);
  planted.add(k.body.key);
  return k.body.key;
}

async function connect(key) {
  const client = new Client({ name: "e2e", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL("/v1/mcp", gw.url), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return client;
}

test("the remote server's tools are listed in its namespace and called with the token the client never holds", async () => {
  const client = await connect(await mint(["docs__*"]));
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["docs__fail", "docs__report", "docs__search"]);
  const search = tools.find((t) => t.name === "docs__search");
  assert.equal(search.description, "Searches the product documentation.");
  assert.equal(search.annotations.readOnlyHint, true);
  assert.deepEqual(search.inputSchema.required, ["q"]);

  const r = await client.callTool({ name: "docs__search", arguments: { q: "refunds" } });
  assert.equal(r.isError, false);
  assert.equal(r.content[0].text, "3 pages about refunds");
  assert.deepEqual(r.structuredContent, { hits: 3, q: "refunds" });
  assert.deepEqual(upstream.state.calls.at(-1), { tool: "search", q: "refunds" });
  assert.equal(upstream.state.refused, 0, "every request to the server carried its token");
  assert.ok(upstream.state.requests.every((q) => q.headers.authorization === `Bearer ${TOKEN}`));
  await client.close();
});

test("a remote tool's progress is streamed to the client as it comes, then its result", async () => {
  const client = await connect(await mint(["docs__*"]));
  const seen = [];
  const r = await client.callTool({ name: "docs__report", arguments: { steps: 3 } }, undefined, {
    onprogress: (p) => seen.push({ ...p, at: Date.now() }),
  });
  assert.equal(r.content[0].text, "report of 3 steps");
  assert.deepEqual(seen.map((p) => [p.progress, p.total, p.message]), [[1, 3, "step 1"], [2, 3, "step 2"], [3, 3, "step 3"]]);
  assert.ok(seen[2].at - seen[0].at >= 150, "each as it came, not all at the end");
  await client.close();
});

test("a client that leaves mid-call cancels the call at the server", async () => {
  const client = await connect(await mint(["docs__*"]));
  const abort = new AbortController();
  const before = upstream.state.cancelled;
  const call = client.callTool({ name: "docs__report", arguments: { steps: 30 } }, undefined, {
    signal: abort.signal,
    onprogress: (p) => p.progress === 2 && abort.abort(),
  });
  await assert.rejects(call);
  for (let i = 0; i < 50 && upstream.state.cancelled === before; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(upstream.state.cancelled, before + 1, "the server was told and stopped");
  await client.close();
});

test("a tool's own failure reaches the model as a tool error", async () => {
  const client = await connect(await mint(["docs__*"]));
  const r = await client.callTool({ name: "docs__fail", arguments: {} });
  assert.equal(r.isError, true);
  assert.equal(r.content[0].text, "the index is being rebuilt");
  await client.close();
});

test("the allowlist hides and refuses a remote tool; nothing reaches the server", async () => {
  const client = await connect(await mint(["docs__search"]));
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), ["docs__search"]);
  const before = upstream.state.requests.length;
  await assert.rejects(client.callTool({ name: "docs__fail", arguments: {} }), /unknown tool: docs__fail/);
  assert.equal(upstream.state.requests.length, before);
  await client.close();
});

test("an email in a remote tool's arguments is redacted before the server sees it", async () => {
  const client = await connect(await mint(["docs__*"]));
  const r = await client.callTool({ name: "docs__search", arguments: { q: "orders of ada@example.com" } });
  assert.equal(r.isError, false);
  const q = upstream.state.calls.at(-1).q;
  assert.ok(!q.includes("ada@example.com"), q);
  assert.match(q, /^orders of \S+/);
  await client.close();
});

test("a server that forgot its sessions gets a new one and the call goes through", async () => {
  const client = await connect(await mint(["docs__*"]));
  await client.callTool({ name: "docs__search", arguments: { q: "one" } });
  const sessions = upstream.state.sessions;
  upstream.forgetSessions();
  const r = await client.callTool({ name: "docs__search", arguments: { q: "two" } });
  assert.equal(r.content[0].text, "3 pages about two");
  assert.equal(upstream.state.sessions, sessions + 1);
  await client.close();
});

test("a server record whose url moves to another origin must be given its token again", async () => {
  const moved = await gw.admin("PUT", "remote/mcp-servers/docs", {
    url: "https://elsewhere.example/mcp",
    auth: { type: "bearer", token: { set: true } },
  });
  assert.equal(moved.status, 422, moved.text);
  assert.match(moved.body.error.message, /auth\.token.*origin changed/);
  const got = await gw.admin("GET", "remote/mcp-servers/docs");
  assert.equal(got.body.url, upstream.url, "nothing changed");
});
