"""Drives an MCP server with the official Python SDK (`mcp`, pinned in the Makefile), as an agent
would, and prints what it saw as one JSON object for tests/e2e/mcp-python.test.mjs to check.

The server's URL and the key come from the environment (MCP_URL, MCP_KEY: never argv, which
other processes can read); the steps to run come on stdin as JSON:
  {"mode": "auto", "steps": [["list"], ["call", "tool", {...arguments}], ...]}
Output: {"protocol_version", "server", "steps": [...]} where a step is
  {"tools": [names]}, {"is_error", "text", "structured"} or {"error": {"code", "message"}}.
"""

import asyncio
import json
import os
import sys

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client


async def step(client, s):
    try:
        if s[0] == "list":
            tools = await client.list_tools()
            return {"tools": [t.name for t in tools.tools]}
        if s[0] == "call":
            r = await client.call_tool(s[1], s[2])
            text = "\n".join(c.text for c in r.content if c.type == "text")
            return {"is_error": r.is_error, "text": text, "structured": r.structured_content}
        raise ValueError(f"unknown step {s[0]!r}")
    except MCPError as e:
        return {"error": {"code": e.error.code, "message": e.error.message}}


async def main():
    plan = json.load(sys.stdin)
    headers = {"Authorization": f"Bearer {os.environ['MCP_KEY']}"}
    # The SDK's documented way to send headers: an HTTP client of one's own, passed to the transport.
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    transport = streamable_http_client(os.environ["MCP_URL"], http_client=http)
    async with http, Client(transport, mode=plan.get("mode", "auto")) as client:
        info = client.server_info
        out = {
            "protocol_version": client.protocol_version,
            "server": info.name if info else None,
            "steps": [await step(client, s) for s in plan["steps"]],
        }
    print(json.dumps(out))


asyncio.run(main())
