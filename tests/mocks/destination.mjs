// A tenant's destination: receives Standard Webhooks deliveries, verifies each signature with
// Node's own crypto (independent of the gateway's Rust code), and can be told to fail. It counts
// the requests open at once per ordering key (the envelope's `ordering_key`), as a receiver that
// needs them one at a time would notice.
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";

export function verifyStandardWebhook(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const id = headers["webhook-id"];
  const ts = headers["webhook-timestamp"];
  const expected = createHmac("sha256", key).update(`${id}.${ts}.${body}`).digest();
  return (headers["webhook-signature"] ?? "").split(" ").some((entry) => {
    const [version, sig] = entry.split(",");
    const got = Buffer.from(sig ?? "", "base64");
    return version === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
  });
}

export async function startDestination(secret) {
  const dest = {
    secret,
    /** Every attempt, successful or not, in the order answered: {id, status, verified, body, headers, at}. */
    attempts: [],
    /** Per ordering key: requests open now, and the most that were open at once. */
    open: new Map(),
    mostOpen: new Map(),
    /** Successful deliveries, by webhook-id. */
    delivered: new Map(),
    /** (attempt for this id, body) => {status, headers?, delayMs?} */
    behaviour: () => ({ status: 200 }),
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const id = req.headers["webhook-id"];
      const nth = dest.attempts.filter((a) => a.id === id).length + 1;
      const verified = verifyStandardWebhook(dest.secret, req.headers, body);
      const key = verified ? JSON.parse(body).ordering_key : undefined;
      if (key !== undefined) {
        dest.open.set(key, (dest.open.get(key) ?? 0) + 1);
        dest.mostOpen.set(key, Math.max(dest.mostOpen.get(key) ?? 0, dest.open.get(key)));
      }
      const plan = verified ? dest.behaviour(nth, JSON.parse(body)) : { status: 401 };
      if (plan.delayMs) await new Promise((r) => setTimeout(r, plan.delayMs));
      dest.attempts.push({ id, status: plan.status, verified, body, headers: req.headers, at: Date.now() });
      if (plan.status >= 200 && plan.status < 300) {
        const list = dest.delivered.get(id) ?? [];
        list.push(JSON.parse(body));
        dest.delivered.set(id, list);
      }
      // Closed once answered (or given up by the sender).
      const closed = () => key !== undefined && dest.open.set(key, dest.open.get(key) - 1);
      if (res.destroyed) return closed();
      res.writeHead(plan.status, { "content-type": "application/json", ...(plan.headers ?? {}) });
      res.end("{}", closed);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  dest.url = `http://127.0.0.1:${server.address().port}/hooks`;
  dest.close = () => new Promise((r) => server.close(r));
  /** Waits until `predicate()` holds, polling; fails after `ms`. */
  dest.until = async (predicate, ms = 20000, what = "condition") => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (predicate()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}; attempts: ${JSON.stringify(dest.attempts.map((a) => [a.id, a.status]))}`);
  };
  return dest;
}
