// A fast local upstream: answers every request with a small fixed JSON body.
import http from "node:http";

// Also a valid WhatsApp Cloud API answer, so the gateway's channel send can use it as the provider.
const body = Buffer.from(JSON.stringify({ ok: true, id: "bench", messaging_product: "whatsapp", messages: [{ id: "wamid.bench" }] }));

export function startUpstream() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
        res.end(body);
      });
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}
