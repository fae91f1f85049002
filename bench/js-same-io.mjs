// The same-I/O references of `make bench`: what each gateway route costs at least, written as
// plain JavaScript that performs the same platform calls and nothing else (no auth, no config, no
// log line), so a route's ratio to its reference measures the gateway's own work.
//   POST /ingress   a Standard Webhooks HMAC checked with WebCrypto, one Durable Object call
//                   (has this id been seen?), one queue send: the webhook ingress.
//   POST /send      one Durable Object call (admission), the provider's fetch, and one more call
//                   after the answer (the delivery record): the channel send.
//   POST /execute   the same three for an integration's GET.

const encoder = new TextEncoder();
let key; // the HMAC key, imported once per isolate as a gateway caches its sealed secrets

async function verified(req, body, secret) {
  key ??= await crypto.subtle.importKey("raw", Uint8Array.from(atob(secret.replace(/^whsec_/, "")), (c) => c.charCodeAt(0)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const id = req.headers.get("webhook-id");
  const ts = req.headers.get("webhook-timestamp");
  const signature = req.headers.get("webhook-signature") ?? "";
  if (!id || !ts || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return null;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(`${id}.${ts}.${body}`)));
  const expected = "v1," + btoa(String.fromCharCode(...mac));
  return signature.split(" ").includes(expected) ? id : null;
}

/** A small table per name: `seen` claims an id once; anything else is a counter. */
export class Reference {
  constructor(state) {
    this.storage = state.storage;
  }

  async fetch(req) {
    const { op, id } = await req.json();
    const stored = await this.storage.get(id);
    if (op === "seen") {
      if (!stored) await this.storage.put(id, 1);
      return Response.json({ seen: Boolean(stored) });
    }
    await this.storage.put(id, (stored ?? 0) + 1);
    return Response.json({ ok: true });
  }
}

const ask = (env, name, cmd) =>
  env.REFERENCE.getByName(name).fetch("https://do.internal/", { method: "POST", body: JSON.stringify(cmd) }).then((r) => r.json());

export default {
  async fetch(req, env, ctx) {
    const { pathname } = new URL(req.url);
    if (pathname === "/ingress") {
      const body = await req.text();
      const id = await verified(req, body, env.WEBHOOK_SECRET);
      if (!id) return Response.json({ error: "bad signature" }, { status: 401 });
      const { seen } = await ask(env, "bench/std", { op: "seen", id });
      if (!seen) await env.EVENTS.send({ id, body });
      return Response.json({ accepted: true, duplicate: seen }, { status: 202 });
    }
    const [target, init] =
      pathname === "/send"
        ? [`${env.UPSTREAM}/v21.0/1065/messages`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer bench-token" }, body: await req.text() }]
        : [`${env.UPSTREAM}/items/1`, { headers: { authorization: "Bearer bench-token" } }];
    await ask(env, "bench/gate", { op: "begin", id: "calls" });
    const answer = await fetch(target, init);
    const text = await answer.text();
    ctx.waitUntil(ask(env, "bench/gate", { op: "finish", id: "calls" }));
    return new Response(text, { status: answer.status, headers: { "content-type": "application/json" } });
  },
};
