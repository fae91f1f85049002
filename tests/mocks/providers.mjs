// Local stand-ins for the WhatsApp Cloud API, Slack Web API, Telegram Bot API and Twilio Messages
// API: each checks its credential, records the request and answers in the provider's real
// response format. `behaviour` overrides the answer to script failures.
import http from "node:http";
import { randomBytes } from "node:crypto";

/** Fresh credentials of each provider's shape, for a test's channels and its mock to agree on. */
export function providerTokens() {
  return {
    whatsapp: "EAAG" + randomBytes(12).toString("hex"),
    slack: "xoxb-" + randomBytes(12).toString("hex"),
    telegram: "123456:" + randomBytes(12).toString("hex"),
    twilio: randomBytes(16).toString("hex"),
    twilioSid: "AC" + randomBytes(16).toString("hex"),
  };
}

export async function startProviders({ tokens }) {
  const p = { requests: [], behaviour: () => null, counter: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const ct = req.headers["content-type"] ?? "";
      const body = ct.startsWith("application/x-www-form-urlencoded") ? [...new URLSearchParams(raw)] : safeJson(raw);
      const url = new URL(req.url, "http://x");
      const provider = url.pathname.startsWith("/api/") ? "slack" : url.pathname.startsWith("/bot") ? "telegram" : url.pathname.startsWith("/2010-04-01/") ? "twilio" : "whatsapp";
      const entry = { provider, path: url.pathname, headers: req.headers, body, raw, mark: textOf(provider, body), ok: false };
      p.requests.push(entry);
      const send = (status, payload, headers = {}) => {
        // `ok`: the provider accepted the message (what a reconciliation counts as sent).
        entry.ok = status < 300 && !(provider === "slack" && payload?.ok === false);
        if (res.destroyed) return;
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(typeof payload === "string" ? payload : JSON.stringify(payload));
      };
      const override = p.behaviour(entry);
      // {delayMs} alone: answer normally, but late.
      if (override?.delayMs) await new Promise((r) => setTimeout(r, override.delayMs));
      if (override?.status) return send(override.status, override.body ?? {}, override.headers);
      const n = ++p.counter;
      switch (provider) {
        case "whatsapp":
          if (req.headers.authorization !== `Bearer ${tokens.whatsapp}`)
            return send(401, { error: { message: "Invalid OAuth access token.", type: "OAuthException", code: 190, fbtrace_id: "x" } });
          return send(200, { messaging_product: "whatsapp", contacts: [{ input: body.to, wa_id: body.to }], messages: [{ id: `wamid.mock${n}` }] });
        case "slack":
          if (req.headers.authorization !== `Bearer ${tokens.slack}`) return send(200, { ok: false, error: "invalid_auth" });
          return send(200, { ok: true, channel: body.channel, ts: `17000000${n}.000100`, message: { text: body.text, type: "message" } });
        case "telegram":
          if (!url.pathname.startsWith(`/bot${tokens.telegram}/`)) return send(401, { ok: false, error_code: 401, description: "Unauthorized" });
          return send(200, { ok: true, result: { message_id: 1000 + n, chat: { id: body.chat_id, type: "private" }, date: 1700000000 } });
        case "twilio": {
          const expected = "Basic " + Buffer.from(`${tokens.twilioSid}:${tokens.twilio}`).toString("base64");
          if (req.headers.authorization !== expected) return send(401, { code: 20003, message: "Authenticate", status: 401 });
          return send(201, { sid: `SM${String(n).padStart(32, "0")}`, status: "queued" });
        }
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  p.url = `http://127.0.0.1:${server.address().port}`;
  p.close = () => new Promise((r) => server.close(r));
  p.of = (provider) => p.requests.filter((r) => r.provider === provider);
  return p;
}

/** The message text a request carries, in each provider's own field. */
function textOf(provider, body) {
  if (provider === "twilio") return Object.fromEntries(body).Body;
  if (provider === "whatsapp") return body?.text?.body;
  return body?.text;
}

function safeJson(s) {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}
