// The shell every route shares: health, OpenAPI, request ids, the error model, body rules, logs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startGateway, assertError, ADMIN_TOKEN } from "../harness.mjs";

let gw;
before(async () => (gw = await startGateway()));
after(async () => gw?.stop());

test("GET /healthz reports version and build", async () => {
  const r = await gw.request("GET", "/healthz");
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "ok");
  assert.match(r.body.version, /^\d+\.\d+\.\d+$/);
  assert.ok(r.body.build.git_sha);
  assert.match(r.headers.get("x-request-id"), /^req_[0-9a-f]{24}$/);
});

test("GET /openapi.json is one OpenAPI 3.1 document bundled from routes/", async () => {
  const r = await gw.request("GET", "/openapi.json");
  assert.equal(r.status, 200);
  assert.equal(r.body.openapi, "3.1.0");
  for (const p of ["/healthz", "/v1/me", "/v1/admin/tenants/{tenant}", "/v1/admin/tenants/{tenant}/keys", "/v1/webhooks/{tenant}/{source}", "/v1/admin/tenants/{tenant}/dead-letters", "/v1/channels/{channel}/messages", "/v1/deliveries/{id}", "/v1/integrations/{id}/{endpoint}", "/v1/marketplace"]) {
    assert.ok(r.body.paths[p], `missing ${p}`);
  }
  assert.ok(r.body.components.schemas.Error);
});

test("a valid incoming x-request-id is honoured, an unsafe one replaced", async () => {
  const ok = await gw.request("GET", "/healthz", { headers: { "x-request-id": "trace-abc.123" } });
  assert.equal(ok.headers.get("x-request-id"), "trace-abc.123");
  const bad = await gw.request("GET", "/healthz", { headers: { "x-request-id": "a b<script>" } });
  assert.match(bad.headers.get("x-request-id"), /^req_/);
});

test("unknown routes and methods get JSON errors", async () => {
  assertError(assert, await gw.request("GET", "/nope"), 404, "not_found");
  assertError(assert, await gw.request("DELETE", "/healthz"), 405, "method_not_allowed");
  assertError(assert, await gw.request("GET", "/v1/admin/tenants/..%2f..", { admin: true }), 400, "invalid_request");
});

test("malformed JSON, wrong content type and oversized bodies are 400/415/413 and change nothing", async () => {
  const bad = await gw.request("PUT", "/v1/admin/tenants/bodies", {
    admin: true,
    body: '{"name": "x",',
    headers: { "content-type": "application/json" },
  });
  assertError(assert, bad, 400, "invalid_request");
  assert.match(bad.body.error.message, /line 1 column \d+/);
  const ct = await gw.request("PUT", "/v1/admin/tenants/bodies", {
    admin: true,
    body: "name=x",
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });
  assertError(assert, ct, 415, "unsupported_media_type");
  const big = await gw.request("PUT", "/v1/admin/tenants/bodies", { admin: true, json: { name: "x".repeat(300 * 1024) } });
  assertError(assert, big, 413, "payload_too_large");
  // Same body streamed without a content-length: refused while reading, not after. The server
  // may answer and close while the client is still uploading, so the response is read with
  // node:http, which reports it even when the rest of the upload is cut off.
  // Under load the connection can also be reset before the answer is read (the server closes
  // while the upload is still in flight): that attempt tells nothing, so it is made again.
  const streamOnce = () =>
    new Promise((resolve, reject) => {
      const req = http.request(new URL("/v1/admin/tenants/bodies", gw.url), {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", "transfer-encoding": "chunked" },
      });
      let answered = false;
      req.on("response", (res) => {
        answered = true;
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
        res.on("error", reject);
      });
      req.on("error", () => {}); // an upload cut short after the answer is expected
      req.on("close", () => answered || resolve(undefined));
      req.setTimeout(20_000, () => req.destroy());
      const chunk = "x".repeat(10 * 1024);
      let sent = 0;
      const pump = () => {
        while (sent < 40) {
          sent++;
          if (!req.write(chunk)) return req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
  let streamed;
  for (let i = 0; i < 3 && !streamed; i++) streamed = await streamOnce();
  assert.ok(streamed, "the streamed upload got an answer in three tries");
  assert.equal(streamed.status, 413);
  assert.equal(streamed.body.error.type, "payload_too_large");
  const wrongType = await gw.admin("PUT", "bodies", ["not", "an", "object"]);
  assertError(assert, wrongType, 422, "validation_error");
  // None of those created anything.
  assertError(assert, await gw.admin("GET", "bodies"), 404, "not_found");
});

test("one structured JSON log line per request, with route template, tenant, status and latency", async () => {
  const { key } = await gw.tenant("logged");
  const r = await gw.request("GET", "/v1/me", { key, headers: { "x-request-id": "log-check-1" } });
  assert.equal(r.status, 200);
  await new Promise((res) => setTimeout(res, 200));
  const lines = gw.logs.map((l) => l.message).filter((m) => m.includes('"request_id":"log-check-1"'));
  assert.equal(lines.length, 1, lines.join("\n"));
  const entry = JSON.parse(lines[0]);
  assert.equal(entry.route, "/v1/me");
  assert.equal(entry.tenant, "logged");
  assert.equal(entry.status, 200);
  assert.equal(typeof entry.latency_ms, "number");
  assert.deepEqual(gw.leaks(), []);
});
