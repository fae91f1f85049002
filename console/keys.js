// A tenant's API keys: the list with each key's settings and spend (never the key), minting a
// key with its settings (shown once, with a copy button), and revoking one.
import { api, tenantPath } from "./api.js";
import { h, field, table, toast, confirmThen, copyable, busy, badge, when } from "./ui.js";

const SCOPES = ["llm", "channels", "integrations", "deliveries"];

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
        h("button", { type: "button", class: "quiet", "aria-label": `Rotate ${k.name ?? k.id}`, onclick: () => rotate(k) }, "Rotate"),
        h("button", { type: "button", class: "quiet", "aria-label": `Revoke ${k.name ?? k.id}`, onclick: () => revoke(k) }, "Revoke"))],
    ], list, "No keys yet."),
    mintForm(ctx, shown),
  );
}

function mintForm(ctx, shown) {
  const t = ctx.tenant;
  const name = h("input", { autocomplete: "off", required: true });
  const kind = h("select", {}, h("option", { value: "secret" }, "Secret key (server side)"), h("option", { value: "publishable" }, "Publishable key (chat widget)"));
  const scopes = SCOPES.map((s) => h("input", { type: "checkbox", value: s, checked: s === "llm", id: `scope-${s}` }));
  const scopeSet = h("fieldset", {}, h("legend", {}, "Scopes"), scopes.map((c) => h("label", { for: c.id }, c, ` ${c.value}`)));
  const rpm = h("input", { type: "number", min: 1, inputmode: "numeric" });
  const tpm = h("input", { type: "number", min: 1, inputmode: "numeric" });
  const monthly = h("input", { type: "number", min: 0, step: "0.01", inputmode: "decimal" });
  const daily = h("input", { type: "number", min: 0, step: "0.01", inputmode: "decimal" });
  const models = h("input", { autocomplete: "off", placeholder: "default, openai/gpt-4o*" });
  const expires = h("input", { type: "date" });
  const submit = h("button", { type: "submit" }, "Mint key");
  const form = h("form", { class: "panel", "aria-labelledby": "mint-title" },
    h("h2", { id: "mint-title" }, "Mint a key"),
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
    h("div", { class: "actions" }, submit));
  const secretFields = () => [scopeSet, rpm.closest(".field"), tpm.closest(".field"), monthly.closest(".field"), daily.closest(".field"), models.closest(".field")];
  kind.addEventListener("change", () => secretFields().forEach((el) => (el.hidden = kind.value !== "secret")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const body = { name: name.value.trim() };
      if (expires.value) body.expires_at = Math.floor(new Date(`${expires.value}T23:59:59Z`).getTime() / 1000);
      let path = tenantPath(t, "widget-keys");
      if (kind.value === "secret") {
        path = tenantPath(t, "keys");
        body.scopes = scopes.filter((c) => c.checked).map((c) => c.value);
        if (rpm.value) body.rpm = Number(rpm.value);
        if (tpm.value) body.tpm = Number(tpm.value);
        if (monthly.value || daily.value) {
          body.budget = {};
          if (monthly.value) body.budget.monthly_usd = Number(monthly.value);
          if (daily.value) body.budget.daily_usd = Number(daily.value);
        }
        const m = models.value.split(",").map((s) => s.trim()).filter(Boolean);
        if (m.length) body.allowed_models = m;
      }
      const minted = await api("POST", path, body);
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
