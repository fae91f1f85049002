// An upstream that misbehaves on purpose: answers far larger than any receipt, bodies that drip a
// byte at a time after prompt headers, and SSE events that never end. It records the headers of
// every request (the gateway's loop mark among them).
import http from "node:http";

const MIB = 1024 * 1024;

/** Writes `total` bytes of `fill` after `head`, then `tail`, in 64 KiB chunks. */
function bigJson(res, head, total, tail) {
  res.writeHead(200, { "content-type": "application/json" });
  res.write(head);
  const chunk = "x".repeat(64 * 1024);
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) return res.once("drain", pump);
    }
    res.end(tail);
  };
  pump();
}

export async function startHostile() {
  const h = { requests: [], open: new Set() };
  const server = http.createServer((req, res) => {
    h.requests.push({ method: req.method, path: req.url, headers: req.headers });
    req.resume();
    const path = new URL(req.url, "http://x").pathname;
    // An 11 MiB answer that is otherwise a valid success for each kind of caller.
    if (path.endsWith("/huge")) return bigJson(res, '{"ok":true,"contact":{"name":"', 11 * MIB, '"}}');
    if (path.endsWith("/huge-declared")) {
      res.writeHead(200, { "content-type": "application/json", "content-length": String(50 * MIB) });
      return res.write('{"ok":true,');
    }
    if (path.endsWith("/sendMessage")) return bigJson(res, '{"ok":true,"result":{"message_id":7,"text":"', 2 * MIB, '"}}');
    if (path.endsWith("/token")) return bigJson(res, '{"access_token":"t","expires_in":3600,"pad":"', 2 * MIB, '"}');
    if (path.endsWith("/chat/completions")) {
      const body = [];
      req.on("data", (c) => body.push(c));
      return req.on("end", () => {
        const model = JSON.parse(Buffer.concat(body).toString() || "{}").model;
        if (model === "huge")
          return bigJson(res, '{"id":"c1","object":"chat.completion","created":1,"model":"huge","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"', 11 * MIB, '"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}');
        // One chunk of content, then one event made of endless short `data:` lines.
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write('data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n');
        const line = "data: " + "y".repeat(1024) + "\n";
        const timer = setInterval(() => {
          for (let i = 0; i < 256; i++) res.write(line);
        }, 5);
        h.open.add(timer);
        res.on("close", () => clearInterval(timer));
      });
    }
    // Prompt headers, then a byte every 300 ms for as long as anyone listens.
    if (path.endsWith("/drip")) {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      const timer = setInterval(() => res.write(" "), 300);
      h.open.add(timer);
      res.on("close", () => clearInterval(timer));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end('{"error":"no route"}');
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  h.url = `http://127.0.0.1:${server.address().port}`;
  h.close = () => {
    for (const t of h.open) clearInterval(t);
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  };
  return h;
}
