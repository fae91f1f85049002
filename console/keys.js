// A tenant's API keys: the list with each key's settings and spend (never the key), minting a
// key with its settings (shown once, with a copy button), changing a key's settings, rotating and
// revoking one.
import { api, tenantPath } from "./api.js";
import { h, field, table, toast, confirmThen, copyable, busy, badge, when } from "./ui.js";
import { inPortal } from "./portal-session.js";

// A secret key is minted with at least one scope (the API refuses none); `*` is every scope, and
// is how a key stored before scopes were required is shown.
const SCOPES = ["llm", "channels", "integrations", "deliveries", "*"];
const SCOPE_LABEL = { "*": "every scope (*)" };

export async function render(main, ctx) {
  const t = ctx.tenant;
  const list = (await api("GET", tenantPath(t, "keys")))?.data ?? [];
  const revoke = (k) =>
    confirmThen(`Revoke ${k.name ?? k.id} (${k.hint})? Requests with it fail from now on.`, { action: "Revoke" }, async () => {
      await api("DELETE", tenantPath(t, "keys", k.id));
      toast(`Key ${k.id} revoked`);
      ctx.go(location.hash);
    });
  // The new key spends the same budget with the same settings; the old one works until revoked.
  const rotate = (k) => {
    const what = `Rotate ${k.name ?? k.id}? A new key with the same settings is minted; ${k.hint} keeps working until you revoke it.`;
    return confirmThen(what, { action: "Rotate" }, async () => {
      const minted = await api("POST", tenantPath(t, "keys", k.id, "rotate"));
      await render(document.getElementById("main"), ctx);
      showOnce(minted, "rotated");
    });
  };
  const spend = (k) => {
    const b = k.spend?.monthly ?? k.spend?.daily;
    if (!b) return "";
    const period = k.spend.monthly ? "month" : "day";
    return `$${Number(b.spent_usd).toFixed(2)} of $${b.limit_usd} this ${period}`;
  };
  const shown = h("div", { id: "minted" });
  const editing = h("div");
  const edit = (k) => {
    editing.replaceChildren(keyForm(ctx, k));
    editing.querySelector("input")?.focus();
  };
  main.replaceChildren(
    h("h1", {}, "API keys"),
    shown,
    table(`Keys of ${t}`, [
      ["Name", (k) => k.name ?? h("span", { class: "muted" }, k.id)],
      ["Key", (k) => h("code", {}, k.hint)],
      ["Kind", (k) => badge(k.kind)],
      ["Scopes", (k) => (k.scopes ?? []).join(", ")],
      ["Created", (k) => when(k.created_at)],
      ["Expires", (k) => when(k.expires_at)],
      ["Budget", spend],
      ["", (k) => h("div", { class: "actions" },
        h("button", { type: "button", class: "quiet", "aria-label": `Edit ${k.name ?? k.id}`, onclick: () => edit(k) }, "Edit"),
        h("button", { type: "button", class: "quiet", "aria-label": `Rotate ${k.name ?? k.id}`, onclick: () => rotate(k) }, "Rotate"),
        h("button", { type: "button", class: "quiet", "aria-label": `Revoke ${k.name ?? k.id}`, onclick: () => revoke(k) }, "Revoke"))],
    ], list, "No keys yet."),
    editing,
    keyForm(ctx),
  );
}

/** The form that mints a key (`existing` unset) or changes an existing key's settings. */
function keyForm(ctx, existing) {
  const t = ctx.tenant;
  const had = existing ?? {};
  const name = h("input", { autocomplete: "off", required: true, value: had.name ?? "" });
  // Publishable keys go with the widget's allowed origins, which the operator sets: not a portal's.
  const publishable = inPortal() && had.kind !== "publishable" ? null : h("option", { value: "publishable", selected: had.kind === "publishable" }, "Publishable key (chat widget)");
  const kind = h("select", { disabled: Boolean(existing) }, h("option", { value: "secret" }, "Secret key (server side)"), publishable);
  const scopes = SCOPES.map((s) => h("input", { type: "checkbox", value: s, checked: existing ? (had.scopes ?? []).includes(s) : s === "llm", id: `scope-${s === "*" ? "all" : s}${existing ? "-edit" : ""}` }));
  const scopeSet = h("fieldset", {}, h("legend", {}, "Scopes"), scopes.map((c) => h("label", { for: c.id }, c, ` ${SCOPE_LABEL[c.value] ?? c.value}`)));
  const number = (v, step) => h("input", { type: "number", min: step ? 0 : 1, step: step ?? 1, inputmode: step ? "decimal" : "numeric", value: v ?? "" });
  const rpm = number(had.rpm);
  const tpm = number(had.tpm);
  const monthly = number(had.budget?.monthly_usd, "0.01");
  const daily = number(had.budget?.daily_usd, "0.01");
  const models = h("input", { autocomplete: "off", placeholder: "default, openai/gpt-4o*", value: (had.allowed_models ?? []).join(", ") });
  const expires = h("input", { type: "date", value: had.expires_at ? new Date(had.expires_at * 1000).toISOString().slice(0, 10) : "" });
  const title = existing ? `Edit ${had.name ?? had.id}` : "Mint a key";
  const submit = h("button", { type: "submit" }, existing ? "Save key" : "Mint key");
  const titleId = existing ? "edit-key-title" : "mint-title";
  const form = h("form", { class: "panel", "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    h("div", { class: "row" }, field("Name", name), field("Kind", kind)),
    scopeSet,
    h("div", { class: "row" },
      field("Requests per minute", rpm, "LLM requests, on top of the tenant's limit"),
      field("Tokens per minute", tpm)),
    h("div", { class: "row" },
      field("Monthly budget (USD)", monthly),
      field("Daily budget (USD)", daily)),
    h("div", { class: "row" },
      field("Allowed models", models, "Comma separated; * matches any run of characters"),
      field("Expires on", expires)),
    h("div", { class: "actions" }, existing ? h("button", { type: "button", class: "quiet", onclick: () => form.remove() }, "Cancel") : null, submit));
  const secretOnly = [scopeSet, rpm, tpm, monthly, daily, models].map((el) => el.closest(".field") ?? el);
  const showFields = () => secretOnly.forEach((el) => (el.hidden = kind.value !== "secret"));
  kind.addEventListener("change", showFields);
  showFields();
  // Minting leaves an empty setting out; saving sends it as null, which clears it (a merge patch).
  const settings = () => {
    const unset = existing ? null : undefined;
    const body = { name: name.value.trim() };
    body.expires_at = expires.value ? Math.floor(new Date(`${expires.value}T23:59:59Z`).getTime() / 1000) : unset;
    if (kind.value === "secret") {
      body.scopes = scopes.filter((c) => c.checked).map((c) => c.value);
      body.rpm = rpm.value ? Number(rpm.value) : unset;
      body.tpm = tpm.value ? Number(tpm.value) : unset;
      const budget = { ...(had.budget ?? {}), monthly_usd: monthly.value ? Number(monthly.value) : undefined, daily_usd: daily.value ? Number(daily.value) : undefined };
      body.budget = budget.monthly_usd !== undefined || budget.daily_usd !== undefined ? budget : unset;
      const m = models.value.split(",").map((x) => x.trim()).filter(Boolean);
      body.allowed_models = m.length ? m : unset;
    }
    return JSON.parse(JSON.stringify(body)); // without the undefined ones, nulls kept
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      if (existing) {
        await api("PATCH", tenantPath(t, "keys", had.id), settings());
        await render(document.getElementById("main"), ctx);
        toast(`Key ${name.value.trim()} saved`);
        return;
      }
      const path = tenantPath(t, kind.value === "secret" ? "keys" : "widget-keys");
      const minted = await api("POST", path, settings());
      await render(document.getElementById("main"), ctx);
      showOnce(minted, "minted");
    });
  });
  return form;
}

/** A key just minted, at the top of the view: the one time it is shown. */
function showOnce(minted, how) {
  const box = document.getElementById("minted");
  box.replaceChildren(h("div", { class: "once", role: "alert" },
    h("p", {}, h("strong", {}, `Key ${minted.name ?? minted.id} ${how}. `), "Copy it now: it is shown only this once."),
    copyable("the new key", minted.key)));
  box.querySelector("button")?.focus();
  toast(`Key ${how}`);
}
