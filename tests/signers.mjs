// How each provider signs its webhooks, written from the providers' documentation with Node's
// crypto: independent of the gateway's Rust verifiers, so the two check each other.
import { createHmac, createHash } from "node:crypto";

const hmac = (alg, key, data) => createHmac(alg, key).update(data);
const now = () => Math.floor(Date.now() / 1000);

export const sign = {
  whatsapp: (secret, body) => ({ "x-hub-signature-256": "sha256=" + hmac("sha256", secret, body).digest("hex") }),
  github: (secret, body, { event = "issues", delivery } = {}) => ({
    "x-hub-signature-256": "sha256=" + hmac("sha256", secret, body).digest("hex"),
    "x-github-event": event,
    "x-github-delivery": delivery,
  }),
  slack: (secret, body, { ts = now() } = {}) => ({
    "x-slack-request-timestamp": String(ts),
    "x-slack-signature": "v0=" + hmac("sha256", secret, `v0:${ts}:${body}`).digest("hex"),
  }),
  stripe: (secret, body, { ts = now() } = {}) => ({
    "stripe-signature": `t=${ts},v1=${hmac("sha256", secret, `${ts}.${body}`).digest("hex")}`,
  }),
  shopify: (secret, body, { topic = "orders/create", eventId } = {}) => ({
    "x-shopify-hmac-sha256": hmac("sha256", secret, body).digest("base64"),
    "x-shopify-topic": topic,
    "x-shopify-event-id": eventId,
  }),
  telegram: (secret) => ({ "x-telegram-bot-api-secret-token": secret }),
  standard: (secret, body, { id, ts = now() } = {}) => {
    const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
    return {
      "webhook-id": id,
      "webhook-timestamp": String(ts),
      "webhook-signature": "v1," + hmac("sha256", key, `${id}.${ts}.${body}`).digest("base64"),
    };
  },
  hmac: (secret, body, { ts = now(), id } = {}) => ({
    "x-signature": "sha256=" + hmac("sha256", secret, `${ts}.${body}`).digest("hex"),
    "x-timestamp": String(ts),
    "x-event-id": id,
  }),
  // Twilio signs the URL it called plus the sorted form parameters, with HMAC-SHA1.
  twilio: (secret, body, { url }) => {
    const params = [...new URLSearchParams(body)].sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : 1));
    const data = url + params.map(([k, v]) => k + v).join("");
    return { "x-twilio-signature": hmac("sha1", secret, data).digest("base64"), "content-type": "application/x-www-form-urlencoded" };
  },
};

export const sha256hex = (s) => createHash("sha256").update(s).digest("hex");
