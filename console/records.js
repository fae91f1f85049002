// A tenant's configuration records: sources (with the exact webhook URL to give the provider and
// a signed sample to try it), destinations, channels, and the LLM routes. Each is a JSON document
// the gateway validates on save; secrets show as {"set": true} and are kept when left so.
import { api, tenantPath, query } from "./api.js";
import { ID_PATTERN } from "./tenants.js";
import { h, field, table, toast, confirmThen, copyable, documentForm, busy, badge } from "./ui.js";
import { filterPicker } from "./event-types.js";

const SOURCE_EXAMPLES = {
  whatsapp: { kind: "whatsapp", secrets: ["<Meta app secret>"], verify_token: "<token you give Meta>" },
  slack: { kind: "slack", secrets: ["<Slack signing secret>"] },
  telegram: { kind: "telegram", secrets: ["<secret_token given to setWebhook>"] },
  twilio: { kind: "twilio", secrets: ["<Twilio auth token>"], public_url: "https://<gateway>/v1/webhooks/<tenant>/<source>" },
  stripe: { kind: "stripe", secrets: ["whsec_<Stripe endpoint secret>"] },
  github: { kind: "github", secrets: ["<GitHub webhook secret>"] },
  shopify: { kind: "shopify", secrets: ["<Shopify app client secret>"] },
  standard: { kind: "standard", secrets: ["whsec_<base64 secret>"] },
  hmac: { kind: "hmac", secrets: ["<shared secret>"], hmac: { header: "X-Signature", algorithm: "sha256", encoding: "hex", prefix: "sha256=" } },
};

/** The URL a provider is given: the source's `public_url`, else this gateway's own. */
export const webhookUrl = (tenant, name, doc) => doc?.public_url ?? `${location.origin}/v1/webhooks/${encodeURIComponent(tenant)}/${encodeURIComponent(name)}`;

const KINDS = {
  sources: {
    title: "Sources",
    one: "source",
    example: () => SOURCE_EXAMPLES.standard,
    examples: SOURCE_EXAMPLES,
    help: "Webhooks a provider sends in. Give the provider the webhook URL; the gateway checks its signature with these secrets.",
    columns: (ctx) => [
      ["Kind", (r) => badge(r.doc.kind ?? "?")],
      ["Webhook URL", (r) => copyable(`webhook URL of ${r.name}`, webhookUrl(ctx.tenant, r.name, r.doc))],
    ],
    extra: (ctx, r, out) => h("button", { type: "button", class: "quiet", "aria-label": `Send a signed sample to ${r.name}`, onclick: (ev) => sendSample(ctx, r.name, ev.target, out) }, "Send a signed sample"),
  },
  destinations: {
    title: "Destinations",
    one: "destination",
    example: () => ({ url: "https://app.example.com/hooks", secret: "whsec_<base64 secret>", filter: { types: ["*"] } }),
    help: "Where events are delivered, signed as Standard Webhooks. The tenant's own destination is `default`: set in its profile, or here, like the others.",
    columns: () => [
      ["URL", (r) => h("code", {}, r.doc.url ?? "")],
      ["Filter", (r) => (r.doc.filter?.types ?? ["*"]).join(", ")],
      ["State", (r) => (r.doc.disabled ? badge("disabled", "bad") : r.doc.paused ? badge("paused", "warn") : badge("active", "ok"))],
    ],
    extra: (ctx, r, out) => h("button", { type: "button", class: "quiet", "aria-label": `Recover failed deliveries to ${r.name}`, onclick: () => recoverForm(ctx, r.name, out) }, "Recover"),
  },
  channels: {
    title: "Channels",
    one: "channel",
    example: () => ({ kind: "telegram", credentials: { bot_token: "<bot token>" } }),
    help: "Where the platform sends messages: POST /v1/channels/{channel}/messages with a tenant key.",
    columns: () => [
      ["Kind", (r) => badge(r.doc.kind ?? "?")],
      ["Sender", (r) => r.doc.phone_number_id ?? r.doc.from ?? r.doc.messaging_service_sid ?? ""],
      ["Rate limit", (r) => (r.doc.rate_limit_per_minute ? `${r.doc.rate_limit_per_minute}/min` : "")],
    ],
  },
};

async function sendSample(ctx, name, button, out) {
  await busy(button, async () => {
    const r = await api("POST", tenantPath(ctx.tenant, "sources", name, "sample"));
    const ok = r.answer.status < 300;
    out.replaceChildren(h("section", { class: "panel", "aria-label": `Sample sent to ${name}` },
      h("p", {}, ok ? badge(`accepted ${r.answer.status}`, "ok") : badge(`refused ${r.answer.status}`, "bad"),
        ` A signed ${r.kind} sample was posted to `, h("code", {}, r.url), ` with ${r.headers.join(", ")}.`),
      h("pre", {}, JSON.stringify(r.answer.body, null, 2))));
    toast(ok ? `Sample accepted by ${name}` : `Sample refused by ${name}`, !ok);
  });
}

/** Sends again every dead letter of a destination since a time, paced by the gateway. */
function recoverForm(ctx, name, out) {
  const day = new Date(Date.now() - 86400_000);
  const since = h("input", { type: "datetime-local", required: true, value: new Date(day - day.getTimezoneOffset() * 60_000).toISOString().slice(0, 16) });
  const submit = h("button", { type: "submit" }, "Retry dead letters");
  const form = h("form", { class: "panel", "aria-label": `Recover ${name}` },
    h("p", {}, `Every delivery to ${name} that became a dead letter since this time is sent again, at the destination's rate limit.`),
    h("div", { class: "row" }, field("Since", since), h("div", { class: "field fit" }, submit)));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const at = Math.floor(new Date(since.value).getTime() / 1000);
      const r = await api("POST", tenantPath(ctx.tenant, "destinations", name, "retry") + query({ since: at }));
      const n = `${r.retried} ${r.retried === 1 ? "delivery" : "deliveries"}`;
      form.replaceChildren(h("p", { role: "status" }, `${n} to ${name} queued again, ${r.per_second} a second (over about ${r.over_seconds} s).`));
    });
  });
  out.replaceChildren(form);
  since.focus();
}

function named(section) {
  const k = KINDS[section];
  return async (main, ctx) => {
    const [name] = ctx.rest;
    if (name) return edit(main, ctx, section, name === "+new" ? null : name);
    const ids = (await api("GET", tenantPath(ctx.tenant, section)))?.data ?? [];
    const docs = await Promise.all(ids.map((r) => api("GET", tenantPath(ctx.tenant, section, r.id)).catch(() => ({}))));
    const rows = ids.map((r, i) => ({ name: r.id, doc: docs[i] ?? {} }));
    const out = h("div", { "aria-live": "polite" });
    const base = `#/t/${encodeURIComponent(ctx.tenant)}/${section}`;
    main.replaceChildren(
      h("h1", {}, k.title),
      h("p", { class: "muted" }, k.help),
      out,
      table(`${k.title} of ${ctx.tenant}`, [
        ["Name", (r) => h("a", { href: `${base}/${encodeURIComponent(r.name)}` }, r.name)],
        ...k.columns(ctx),
        ["", (r) => h("div", { class: "actions" }, k.extra?.(ctx, r, out),
          h("button", { type: "button", class: "quiet", "aria-label": `Delete ${r.name}`, onclick: () => remove(ctx, section, r.name) }, "Delete"))],
      ], rows, `No ${section} yet.`),
      h("p", {}, h("a", { class: "button", href: `${base}/+new` }, `New ${k.one}`)),
    );
  };
}

async function edit(main, ctx, section, name) {
  const k = KINDS[section];
  const list = `#/t/${encodeURIComponent(ctx.tenant)}/${section}`;
  const doc = name ? await api("GET", tenantPath(ctx.tenant, section, name)) : k.example();
  const nameInput = h("input", { required: true, autocomplete: "off", spellcheck: "false", pattern: ID_PATTERN });
  const before = [];
  if (!name) {
    before.push(field(`${k.one[0].toUpperCase()}${k.one.slice(1)} name`, nameInput));
    if (k.examples) {
      const pick = h("select", {}, Object.keys(k.examples).map((kind) => h("option", { value: kind, selected: kind === "standard" }, kind)));
      pick.addEventListener("change", () => form.editor.show(k.examples[pick.value]));
      before.push(field("Kind", pick, "Fills in an example to edit"));
    }
  } else if (section === "sources") {
    before.push(field("Webhook URL", copyable(`webhook URL of ${name}`, webhookUrl(ctx.tenant, name, doc)), "Paste this into the provider's webhook settings"));
  }
  const form = documentForm({
    label: "Document",
    doc,
    before,
    actions: [h("a", { href: list }, "Back")],
    save: async (changed) => {
      const target = name ?? nameInput.value.trim();
      await api("PUT", tenantPath(ctx.tenant, section, target), changed);
      toast(`${k.one} ${target} saved`);
      ctx.go(list);
    },
  });
  // A destination's filter takes its types from the event catalog.
  if (section === "destinations") form.prepend(await filterPicker(form.editor));
  main.replaceChildren(h("h1", {}, name ? `${k.title}: ${name}` : `New ${k.one}`), form);
}

function remove(ctx, section, name) {
  return confirmThen(`Delete ${KINDS[section].one} ${name}?`, {}, async () => {
    await api("DELETE", tenantPath(ctx.tenant, section, name));
    toast(`${name} deleted`);
    ctx.go(location.hash);
  });
}

export const sources = named("sources");
export const destinations = named("destinations");
export const channels = named("channels");

/** The tenant's LLM configuration: providers (keys write-only) and routes (alias -> targets). */
export async function llm(main, ctx) {
  let doc = null;
  try {
    doc = await api("GET", tenantPath(ctx.tenant, "llm"));
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  const shown = doc ?? { providers: { openai: { kind: "openai", api_key: "<key>" } }, routes: { default: [{ provider: "openai", model: "gpt-4o-mini" }] } };
  const routes = Object.entries(shown.routes ?? {}).map(([alias, targets]) => ({ alias, targets: Array.isArray(targets) ? targets : targets?.targets ?? [] }));
  const form = documentForm({
    label: "LLM configuration",
    doc: shown,
    help: "Providers with their keys (write-only), and routes: each alias with its targets, tried in order.",
    actions: doc ? [h("button", { type: "button", class: "quiet", onclick: () => removeLlm(ctx) }, "Delete configuration")] : [],
    save: async (changed) => {
      await api("PUT", tenantPath(ctx.tenant, "llm"), changed);
      toast("LLM configuration saved");
      ctx.go(location.hash);
    },
  });
  main.replaceChildren(
    h("h1", {}, "LLM routes"),
    doc ? table("Routes", [
      ["Alias", (r) => h("code", {}, r.alias)],
      ["Targets, in order", (r) => r.targets.map((t) => `${t.provider}/${t.model}`).join(" → ")],
    ], routes) : h("p", { class: "muted" }, "No LLM configuration yet: edit the example below and save it."),
    form,
  );
}

function removeLlm(ctx) {
  return confirmThen(`Delete the LLM configuration of ${ctx.tenant}? Its budgets' spend resets too.`, {}, async () => {
    await api("DELETE", tenantPath(ctx.tenant, "llm"));
    toast("LLM configuration deleted");
    ctx.go(location.hash);
  });
}
