// Two origins for redirect tests. The front answers every request under `/cross/` with a 302 (or
// under `/cross307/` with a 307) to the same path on the sink, another origin; under `/same/` with
// a 302 to `/final/` on itself (a relative Location), where it answers 200 with a small JSON
// success. Both record every request: method, path, headers and body.
import http from "node:http";

function recorder(answer) {
  const h = { requests: [] };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      h.requests.push({ method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      answer(req, res);
    });
  });
  h.start = async () => {
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    h.url = `http://127.0.0.1:${server.address().port}`;
    h.close = () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    };
    return h;
  };
  return h;
}

const json = (res, status, doc, headers = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(doc));
};

/** {front, sink}: the sink answers 200 `{"ok":true}` to anything, as a stolen request would be. */
export async function startRedirectPair() {
  const sink = await recorder((req, res) => json(res, 200, { ok: true, ts: "1.2", access_token: "stolen", expires_in: 3600 })).start();
  const front = await recorder((req, res) => {
    const cross = /^\/cross(307)?(\/.*)$/.exec(req.url);
    if (cross) return json(res, cross[1] ? 307 : 302, { moved: true }, { location: `${sink.url}${cross[2]}` });
    if (req.url.startsWith("/same/")) return json(res, 302, { moved: true }, { location: req.url.replace(/^\/same\//, "/final/") });
    if (req.url.startsWith("/final/")) return json(res, 200, { ok: true, contact: { name: "Ada" } });
    json(res, 404, { error: "no route" });
  }).start();
  return { front, sink };
}
