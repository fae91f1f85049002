// Integrations: the installed ones with their health and a test button, and the marketplace as
// cards, each installing through a form built from its template's settings (credentials as
// password fields: they are sealed once installed and never shown again). In the tenant portal,
// a template the provider's consent page connects shows Connect instead (connect.js), and an
// installed one its connection, with Reconnect and Disconnect.
import { api, tenantPath, query, marketplacePath } from "./api.js";
import { h, field, toast, confirmThen, busy, badge, when, errorBox } from "./ui.js";
import { inPortal, portalSession } from "./portal-session.js";
import { connectForm, connect, disconnect, connectionBadge, connectionLine } from "./connect.js";

export async function render(main, ctx) {
  const t = ctx.tenant;
  const portal = inPortal();
  const [installed, usage, market] = await Promise.all([
    api("GET", tenantPath(t, "integrations")),
    // The portal's usage is a capability of its own: without it, no health is shown.
    portal && !portalSession.capabilities().includes("usage") ? null : api("GET", tenantPath(t, "usage")).catch(() => null),
    api("GET", marketplacePath()),
  ]);
  const health = new Map((usage?.integrations_health ?? []).map((x) => [x.integration, x]));
  // The admin API answers the document; the portal's may answer it with its connection.
  const got = await Promise.all((installed?.data ?? []).map((r) => api("GET", tenantPath(t, "integrations", r.id)).catch(() => ({}))));
  const docs = got.map((g) => g?.integration ?? g ?? {});
  const connectable = new Set(portal ? (market?.data ?? []).filter((tpl) => tpl.connect).map((tpl) => tpl.id) : []);
  const cards = h("div", { class: "cards" });
  const q = h("input", { type: "search", placeholder: "CRM, payments, Shopify…", autocomplete: "off" });
  const form = h("form", { role: "search", class: "row" }, field("Search the marketplace", q), h("div", { class: "field fit" }, h("button", { type: "submit" }, "Search")));
  const installArea = h("div");
  const list = (installed?.data ?? []).map((r, i) => installedCard(ctx, r.id, docs[i] ?? {}, health.get(r.id), { connection: got[i]?.connection, connectable: connectable.has(docs[i]?.template) }));
  main.replaceChildren(
    h("h1", {}, "Integrations"),
    h("h2", {}, "Installed"),
    list.length ? h("div", { class: "cards" }, list) : h("p", { class: "muted" }, "None installed yet: pick one from the marketplace."),
    h("h2", {}, "Marketplace"),
    form,
    installArea,
    cards,
  );
  const show = (found) => {
    cards.replaceChildren(...(found?.data ?? []).map((tpl) => templateCard(ctx, tpl, installArea, connectable.has(tpl.id))));
    if (!found?.data?.length) cards.replaceChildren(h("p", { class: "muted" }, "No template matches."));
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    api("GET", `${marketplacePath()}${query({ q: q.value.trim() })}`).then(show, (e) => toast(e.message, true));
  });
  show(market);
}

function healthBadge(hl) {
  if (!hl) return badge("not checked");
  return hl.ok ? badge("healthy", "ok") : badge("failing", "bad");
}

function installedCard(ctx, id, doc, hl, { connection, connectable }) {
  const report = h("div", { "aria-live": "polite" });
  const state = h("span", {}, connectionBadge(connection) ?? healthBadge(hl));
  const test = h("button", { type: "button", "aria-label": `Test ${id}` }, "Test");
  test.addEventListener("click", () => busy(test, async () => {
    const r = await api("POST", tenantPath(ctx.tenant, "integrations", id, "test"));
    state.replaceChildren(healthBadge(r));
    report.replaceChildren(h("p", {}, r.ok ? "Test passed" : "Test failed", `: ${r.endpoint ?? ""} answered ${r.status_code ?? "nothing"} in ${r.execution_time_ms ?? "?"} ms`, r.error ? ` (${r.error.message ?? r.error})` : ""));
    toast(r.ok ? `${id}: test passed` : `${id}: test failed`, !r.ok);
  }));
  const remove = h("button", { type: "button", class: "quiet", "aria-label": `Delete ${id}` }, "Delete");
  remove.addEventListener("click", async () => {
    await confirmThen(`Delete integration ${id}? Calls to it fail from now on.`, {}, () =>
      busy(remove, async () => {
        await api("DELETE", tenantPath(ctx.tenant, "integrations", id));
        toast(`${id} deleted`);
        ctx.go(location.hash);
      }));
  });
  const endpoints = Object.keys(doc.endpoints ?? {});
  // Connected through the provider: connect again (same settings), or disconnect (revoked there).
  const again = connection ? "Reconnect" : "Connect";
  const reconnect = connectable ? h("button", { type: "button", class: "quiet", "aria-label": `${again} ${id}` }, again) : null;
  reconnect?.addEventListener("click", () => busy(reconnect, () => connect(ctx, id, {}, report)));
  const cut = connectable && connection?.status === "connected" ? h("button", { type: "button", class: "quiet", "aria-label": `Disconnect ${id}` }, "Disconnect") : null;
  cut?.addEventListener("click", () => confirmThen(`Disconnect ${id}? Its access at the provider is revoked; calls to it fail until it is connected again.`, { action: "Disconnect" }, () => busy(cut, () => disconnect(ctx, id))));
  return h("article", { class: "card", "aria-label": `Integration ${id}` },
    h("h3", {}, id, " ", state),
    h("p", {}, [doc.name, doc.provider, doc.category].filter(Boolean).join(" · ")),
    connectionLine(connection),
    h("p", {}, endpoints.length ? `Endpoints: ${endpoints.join(", ")}` : ""),
    hl?.checked_at ? h("p", {}, `Last checked ${when(hl.checked_at)}`) : null,
    report,
    h("div", { class: "actions" }, remove, cut, reconnect, test));
}

function templateCard(ctx, tpl, installArea, connects) {
  // A template the provider's consent page connects is connected, not given credentials.
  const verb = connects ? "Connect" : "Install";
  const install = h("button", { type: "button", "aria-label": `${verb} ${tpl.name}` }, verb);
  install.addEventListener("click", () => {
    installArea.replaceChildren(connects ? connectForm(ctx, tpl, installArea) : installForm(ctx, tpl, installArea));
    installArea.querySelector("input")?.focus();
  });
  return h("article", { class: "card", "aria-label": tpl.name },
    h("h3", {}, tpl.name),
    h("p", {}, `${tpl.provider} · ${tpl.category}`),
    h("p", {}, tpl.description),
    h("p", {}, `${tpl.endpoints?.length ?? 0} endpoints${tpl.scopes?.length ? ` · needs ${tpl.scopes.join(", ")}` : ""}`),
    h("div", { class: "actions" }, install));
}

/** An input for one of a template's settings, as its rule describes it. */
function settingInput(rule, secret) {
  if (rule.enum) return h("select", { required: rule.required }, rule.required ? null : h("option", { value: "" }, "—"), rule.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
  if (rule.type === "boolean") return h("input", { type: "checkbox" });
  if (rule.type === "number" || rule.type === "integer") return h("input", { type: "number", required: rule.required, min: rule.min, max: rule.max, step: rule.type === "integer" ? 1 : "any" });
  return h("input", { type: secret ? "password" : "text", required: rule.required, autocomplete: secret ? "new-password" : "off", spellcheck: "false" });
}

function readSetting(input, rule) {
  if (input.type === "checkbox") return input.checked;
  if (input.value === "") return undefined;
  if (input.tagName === "SELECT") return JSON.parse(input.value);
  if (rule.type === "number" || rule.type === "integer") return Number(input.value);
  return input.value.trim();
}

function installForm(ctx, tpl, area) {
  const id = h("input", { required: true, value: tpl.id, autocomplete: "off", spellcheck: "false" });
  const secret = new Set(tpl.secret_settings ?? []);
  const inputs = Object.entries(tpl.settings ?? {}).map(([name, rule]) => {
    const input = settingInput(rule, secret.has(name));
    const help = [tpl.settings_help?.[name], secret.has(name) ? "sealed when saved, never shown again" : null, rule.required ? null : "optional"].filter(Boolean).join("; ");
    return { name, rule, input, el: field(name, input, help) };
  });
  const status = h("div");
  const submit = h("button", { type: "submit" }, `Install ${tpl.name}`);
  const form = h("form", { class: "panel", "aria-labelledby": "install-title" },
    h("h2", { id: "install-title" }, `Install ${tpl.name}`),
    field("Integration id", id, "How the platform calls it: POST /v1/integrations/{id}/{endpoint}"),
    inputs.map((i) => i.el),
    status,
    h("div", { class: "actions" }, h("button", { type: "button", class: "quiet", onclick: () => area.replaceChildren() }, "Cancel"), submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    busy(submit, async () => {
      const settings = {};
      for (const i of inputs) {
        const v = readSetting(i.input, i.rule);
        if (v !== undefined) settings[i.name] = v;
      }
      try {
        await api("POST", tenantPath(ctx.tenant, "integrations"), { template: tpl.id, id: id.value.trim(), settings });
        toast(`${tpl.name} installed as ${id.value.trim()}`);
        ctx.go(location.hash);
      } catch (e) {
        status.replaceChildren(errorBox(e));
      }
    });
  });
  return form;
}
