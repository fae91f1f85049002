// A tenant's remote MCP server, built with the official TypeScript SDK's server (stateful
// Streamable HTTP: sessions, SSE answers), behind a bearer check as a hosted MCP server has:
// a request without the token is a 401 and reaches no tool. It records what its tools were
// given, and every request's headers, for the tests to read.
import http from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

export async function startMcpServer({ token }) {
  const state = { calls: [], requests: [], sessions: 0, refused: 0, cancelled: 0 };
  const transports = new Map();

  const newServer = () => {
    const server = new McpServer({ name: "docs-standin", version: "1.0.0" });
    server.registerTool(
      "search",
      {
        description: "Searches the product documentation.",
        inputSchema: { q: z.string() },
        annotations: { readOnlyHint: true },
      },
      async ({ q }) => {
        state.calls.push({ tool: "search", q });
        return { content: [{ type: "text", text: `3 pages about ${q}` }], structuredContent: { hits: 3, q } };
      },
    );
    server.registerTool(
      "report",
      { description: "Builds a report in steps, telling its progress.", inputSchema: { steps: z.number().int() } },
      async ({ steps }, extra) => {
        const token = extra._meta?.progressToken;
        for (let i = 1; i <= steps; i++) {
          if (extra.signal.aborted) {
            state.cancelled++;
            return { content: [{ type: "text", text: "cancelled" }], isError: true };
          }
          if (token !== undefined) {
            await extra.sendNotification({ method: "notifications/progress", params: { progressToken: token, progress: i, total: steps, message: `step ${i}` } });
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        if (extra.signal.aborted) state.cancelled++;
        return { content: [{ type: "text", text: `report of ${steps} steps` }] };
      },
    );
    server.registerTool(
      "fail",
      { description: "Always fails.", inputSchema: {} },
      async () => ({ content: [{ type: "text", text: "the index is being rebuilt" }], isError: true }),
    );
    return server;
  };

  const srv = http.createServer(async (req, res) => {
    state.requests.push({ method: req.method, headers: req.headers });
    if (req.headers.authorization !== `Bearer ${token}`) {
      state.refused++;
      res.writeHead(401, { "content-type": "application/json", "www-authenticate": "Bearer" });
      return res.end(JSON.stringify({ error: "invalid_token" }));
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const sid = req.headers["mcp-session-id"];
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid || body?.method !== "initialize") {
        res.writeHead(sid ? 404 : 400, { "content-type": "application/json" });
        return res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "no such session" }, id: null }));
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          state.sessions++;
          transports.set(id, transport);
        },
      });
      await newServer().connect(transport);
    }
    await transport.handleRequest(req, res, body);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${srv.address().port}/mcp`;
  return {
    url,
    state,
    /** Forgets every session, as a restarted server does. */
    forgetSessions: () => transports.clear(),
    close: () => new Promise((r) => srv.close(r)),
  };
}
