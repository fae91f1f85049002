// Correctly signed webhook samples for every source kind, in each provider's recorded payload
// shape, shared by the webhook and fault-injection suites.
import { randomBytes } from "node:crypto";
import { sign, sha256hex } from "./signers.mjs";

export const KINDS = ["whatsapp", "slack", "telegram", "twilio", "stripe", "github", "shopify", "standard", "hmac"];

/** Fresh signing secrets for every kind. */
export function sourceSecrets() {
  return {
    whatsapp: "meta-app-secret-" + randomBytes(8).toString("hex"),
    slack: "slack-signing-" + randomBytes(8).toString("hex"),
    telegram: "tg-" + randomBytes(8).toString("hex"),
    twilio: "twilio-token-" + randomBytes(8).toString("hex"),
    stripe: "whsec_stripe" + randomBytes(8).toString("hex"),
    github: "gh-" + randomBytes(8).toString("hex"),
    shopify: "shp-" + randomBytes(8).toString("hex"),
    standard: "whsec_" + randomBytes(24).toString("base64"),
    hmac: "generic-" + randomBytes(8).toString("hex"),
  };
}

export const twilioUrl = (tenant, source) => `https://gateway.example.com/v1/webhooks/${tenant}/${source}`;

/** The admin document for a source of `kind` named after its kind. */
export function sourceDoc(tenant, kind, secret, verifyToken) {
  const doc = { kind, secrets: [secret] };
  if (kind === "whatsapp" && verifyToken) doc.verify_token = verifyToken;
  if (kind === "twilio") doc.public_url = twilioUrl(tenant, kind);
  if (kind === "hmac")
    doc.hmac = { header: "X-Signature", algorithm: "sha256", encoding: "hex", prefix: "sha256=", timestamp_header: "X-Timestamp", template: "{timestamp}.{body}", id_header: "X-Event-Id" };
  return doc;
}

/** The gateway's stable event id (the delivery's `webhook-id`) for a provider's id. */
export const eventId = (tenant, source, providerId) => "evt_" + sha256hex(`${tenant}\x1f${source}\x1f${providerId}`).slice(0, 32);

const uid = () => randomBytes(6).toString("hex");

/** The provider's id of a body-signed kind (GitHub, Shopify, generic HMAC): the body's digest,
 * since their delivery-id headers are not signed. */
export const bodyId = (body) => "sha256:" + sha256hex(body);

/** A correctly signed sample of `kind` for `tenant`: {body, headers, pid (provider's id), type}. */
export function sample(tenant, S, kind) {
  const u = uid();
  switch (kind) {
    case "whatsapp": {
      const wamid = `wamid.${u}`;
      const body = JSON.stringify({ object: "whatsapp_business_account", entry: [{ id: "WABA", changes: [{ field: "messages", value: {
        messaging_product: "whatsapp", metadata: { display_phone_number: "15550783881", phone_number_id: "106540352242922" },
        contacts: [{ profile: { name: "Kerry" }, wa_id: "16315551181" }],
        messages: [{ from: "16315551181", id: wamid, timestamp: "1749416383", type: "text", text: { body: "hi " + u } }] } }] }] });
      return { body, headers: sign.whatsapp(S.whatsapp, body), pid: wamid, type: "message.received" };
    }
    case "slack": {
      const eid = `Ev${u}`;
      const body = JSON.stringify({ token: "x", team_id: "T1", api_app_id: "A1", type: "event_callback", event_id: eid, event_time: 1,
        event: { type: "message", channel: "C1", user: "U1", text: "hello " + u, ts: "1700000000.000100" } });
      return { body, headers: sign.slack(S.slack, body), pid: eid, type: "message.received" };
    }
    case "telegram": {
      const id = parseInt(u.slice(0, 8), 16);
      const body = JSON.stringify({ update_id: id, message: { message_id: 1, date: 1700000000, chat: { id: 42, type: "private" }, from: { id: 42, is_bot: false, first_name: "A" }, text: "hey" } });
      return { body, headers: sign.telegram(S.telegram), pid: String(id), type: "message.received" };
    }
    case "twilio": {
      const sid = `SM${u}`;
      const body = new URLSearchParams({ MessageSid: sid, AccountSid: "AC1", From: "+15558675310", To: "+15017122661", Body: "Hello from SMS", NumMedia: "0", SmsStatus: "received" }).toString();
      return { body, headers: sign.twilio(S.twilio, body, { url: twilioUrl(tenant, "twilio") }), pid: sid, type: "message.received" };
    }
    case "stripe": {
      const id = `evt_${u}`;
      const body = JSON.stringify({ id, object: "event", type: "payment_intent.succeeded", data: { object: { id: "pi_1", amount: 2000 } } });
      return { body, headers: sign.stripe(S.stripe, body), pid: id, type: "stripe.payment_intent.succeeded" };
    }
    case "github": {
      const delivery = `${u}-cc78-11e3-81ab-4c9367dc0958`;
      const body = JSON.stringify({ action: "opened", issue: { number: 1, title: "Bug " + u } });
      return { body, headers: sign.github(S.github, body, { delivery }), pid: bodyId(body), type: "github.issues.opened" };
    }
    case "shopify": {
      const eventId = `${u}-7158-44d4-b7cd-2c97c8a091b5`;
      const body = JSON.stringify({ id: parseInt(u, 16), email: "jon@example.com", total_price: "199.00" });
      return { body, headers: sign.shopify(S.shopify, body, { eventId }), pid: bodyId(body), type: "shopify.orders/create" };
    }
    case "standard": {
      const id = `msg_${u}`;
      const body = JSON.stringify({ type: "invoice.paid", data: { invoice: "in_1" } });
      return { body, headers: sign.standard(S.standard, body, { id }), pid: id, type: "invoice.paid" };
    }
    case "hmac": {
      const id = `ev-${u}`;
      const body = JSON.stringify({ type: "ticket.created", ticket: u });
      return { body, headers: sign.hmac(S.hmac, body, { id }), pid: bodyId(body), type: "ticket.created" };
    }
  }
  throw new Error(`no sample for ${kind}`);
}

/** Providers re-sign a redelivery with a fresh timestamp; the event id stays the same. */
export function resign(S, kind, s) {
  if (kind === "stripe") return sign.stripe(S.stripe, s.body);
  if (kind === "slack") return sign.slack(S.slack, s.body);
  if (kind === "hmac") return sign.hmac(S.hmac, s.body, { id: s.headers["x-event-id"] });
  if (kind === "standard") return sign.standard(S.standard, s.body, { id: s.pid });
  return s.headers;
}
