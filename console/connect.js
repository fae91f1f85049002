// Connecting an integration from the tenant portal: a template's connect settings as a form, the
// gateway's hosted connect page (the connect answer's `connect_url`) in a popup, and the page
// watching the integration until the connect's outcome shows. The popup, not this tab: the
// portal's session lives in this page's memory, which leaving the page would end. The popup is
// cut from this page (`opener` null), so the provider's pages cannot reach back into it.
import { api, tenantPath } from "./api.js";
import { h, field, toast, badge, busy, errorBox, when } from "./ui.js";

const WATCH_MS = 10 * 60_000; // a connect attempt's lifetime (its state's)
const POLL_MS = 1500;

/** A connection's state as a badge: connected, or why not. */
export function connectionBadge(connection) {
  if (!connection) return null;
  if (connection.status === "connected") return badge("connected", "ok");
  return badge(connection.reason ? `${connection.status}: ${connection.reason.replace(/_/g, " ")}` : connection.status, "bad");
}

/** What a connection says about itself, for a card. */
export function connectionLine(connection) {
  if (!connection) return null;
  const parts = [connection.account ? `as ${connection.account}` : null, connection.connected_at ? `since ${when(connection.connected_at)}` : null];
  return h("p", {}, parts.filter(Boolean).join(", "));
}

/** The form a template is connected with: an id, and the settings the tenant gives (the provider gives the rest). */
export function connectForm(ctx, tpl, area) {
  const id = h("input", { required: true, value: tpl.id, autocomplete: "off", spellcheck: "false" });
  const inputs = (tpl.connect?.settings ?? []).map((name) => {
    const rule = tpl.settings?.[name] ?? {};
    const input = h("input", { required: Boolean(rule.required), autocomplete: "off", spellcheck: "false" });
    return { name, rule, input, el: field(name, input, [tpl.settings_help?.[name], rule.required ? null : "optional"].filter(Boolean).join("; ")) };
  });
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, `Connect ${tpl.name}`);
  const scopes = tpl.connect?.scopes?.length ? h("p", { class: "muted" }, `${tpl.provider ?? tpl.name} will ask you to grant: ${tpl.connect.scopes.join(", ")}.`) : null;
  const form = h("form", { class: "panel", "aria-labelledby": "connect-title" },
    h("h2", { id: "connect-title" }, `Connect ${tpl.name}`),
    h("p", {}, `You sign in at ${tpl.provider ?? tpl.name} in a new window and allow access there; your password is never typed here.`),
    scopes,
    field("Integration id", id, "How your calls name it: /v1/integrations/{id}/{endpoint}"),
    inputs.map((i) => i.el),
    status,
    h("div", { class: "actions" }, h("button", { type: "button", class: "quiet", onclick: () => area.replaceChildren() }, "Cancel"), submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const settings = {};
    for (const i of inputs) {
      const v = i.input.value.trim();
      if (v !== "") settings[i.name] = i.rule.type === "number" || i.rule.type === "integer" ? Number(v) : v;
    }
    busy(submit, () => connect(ctx, id.value.trim(), { template: tpl.id, settings }, status));
  });
  return form;
}

/** Whether `id` is installed, and its connection (when the API tells it). */
async function stateOf(ctx, id) {
  try {
    const r = await api("GET", tenantPath(ctx.tenant, "integrations", id));
    return { installed: true, connection: r?.connection ?? null };
  } catch (e) {
    if (e.status === 404) return { installed: false, connection: null };
    throw e;
  }
}

const changed = (a, b) => a.installed !== b.installed || JSON.stringify(a.connection) !== JSON.stringify(b.connection);

/**
 * Starts a connect (or a reconnect: `body` empty) of `id`, opens its hosted page in a popup, and
 * redraws the view once the integration's state changes (or the popup is closed). The popup is
 * opened before the call, while the click still allows it; a blocked one leaves a link instead.
 */
export async function connect(ctx, id, body, status) {
  const before = await stateOf(ctx, id);
  const popup = window.open("", "eg-connect", "popup,width=560,height=760");
  if (popup) popup.opener = null;
  let r;
  try {
    r = await api("POST", tenantPath(ctx.tenant, "integrations", id, "connect"), body);
  } catch (e) {
    popup?.close();
    status.replaceChildren(errorBox(e));
    return;
  }
  if (popup) popup.location.href = r.connect_url;
  const again = h("a", { href: r.connect_url, target: "_blank", rel: "noopener noreferrer" }, "open the connect page");
  status.replaceChildren(h("p", { role: "status" },
    popup ? "Finish connecting in the window that opened. This page updates when it is done (or " : "Your browser kept the connect window from opening: ",
    again, popup ? " again)." : "."));
  const until = Date.now() + WATCH_MS;
  while (Date.now() < until && status.isConnected) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const now = await stateOf(ctx, id).catch(() => before);
    if (changed(before, now) || popup?.closed) {
      if (!status.isConnected) return;
      toast(now.connection?.status === "connected" || (!before.installed && now.installed) ? `${id} connected` : `${id}: connect finished`);
      ctx.go(location.hash);
      return;
    }
  }
}

/** Disconnects `id`: the provider is asked to revoke its tokens, and the gateway forgets them. */
export async function disconnect(ctx, id) {
  await api("DELETE", tenantPath(ctx.tenant, "integrations", id, "connection"));
  toast(`${id} disconnected`);
  ctx.go(location.hash);
}
