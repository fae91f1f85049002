// Tenants: the list, a new tenant, a tenant's profile as its JSON document, and deleting one
// (which removes its keys and records too, so the operator types its id to confirm).
import { api, tenantPath } from "./api.js";
import { h, field, table, toast, confirmThen, documentForm, busy } from "./ui.js";

// An id as the gateway takes it (`-` escaped: browsers read `pattern` in the `v` mode).
export const ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}";

export async function render(main, ctx) {
  const [id] = ctx.rest;
  if (id) return edit(main, ctx, id);
  const list = await api("GET", "/v1/admin/tenants");
  const rows = list?.data ?? [];
  const profiles = await Promise.all(rows.slice(0, 100).map((t) => api("GET", tenantPath(t.id)).catch(() => ({}))));
  const open = (t) => h("a", { href: `#/t/${encodeURIComponent(t.id)}/keys` }, t.id);
  const actions = (t) =>
    h("div", { class: "actions" },
      h("a", { href: `#/tenants/${encodeURIComponent(t.id)}`, "aria-label": `Edit ${t.id}` }, "Edit"),
      h("button", { type: "button", class: "quiet", "aria-label": `Delete ${t.id}`, onclick: () => remove(ctx, t.id) }, "Delete"));
  const withProfile = rows.map((t, i) => ({ ...t, profile: profiles[i] ?? {} }));
  main.replaceChildren(
    h("h1", {}, "Tenants"),
    table("Every tenant of this gateway", [
      ["Tenant", open],
      ["Name", (t) => t.profile.name ?? ""],
      ["Destination", (t) => t.profile.destination?.url ?? ""],
      ["", actions],
    ], withProfile, "No tenants yet: create the first one below."),
    createForm(ctx),
  );
}

function createForm(ctx) {
  const id = h("input", { required: true, pattern: ID_PATTERN, autocomplete: "off", spellcheck: "false" });
  const name = h("input", { required: true, autocomplete: "off" });
  const url = h("input", { type: "url", placeholder: "https://app.example.com/hooks", autocomplete: "off" });
  const secret = h("input", { type: "password", autocomplete: "new-password", placeholder: "whsec_…" });
  const submit = h("button", { type: "submit" }, "Create tenant");
  const form = h("form", { class: "panel", "aria-labelledby": "new-tenant" },
    h("h2", { id: "new-tenant" }, "New tenant"),
    h("div", { class: "row" },
      field("Tenant id", id, "Letters, digits, . _ -; used in URLs and keys"),
      field("Name", name)),
    h("div", { class: "row" },
      field("Destination URL", url, "Where its webhook events are delivered (optional)"),
      field("Destination secret", secret, "Standard Webhooks signing secret (write-only)")),
    h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const doc = { name: name.value.trim() };
      if (url.value) doc.destination = { url: url.value.trim(), ...(secret.value ? { secret: secret.value } : {}) };
      const existing = await api("GET", tenantPath(id.value)).catch(() => null);
      if (existing) throw new Error(`tenant ${id.value} already exists`);
      await api("PUT", tenantPath(id.value), doc);
      toast(`Tenant ${id.value} created`);
      await ctx.tenantsChanged();
      ctx.go(`#/t/${encodeURIComponent(id.value)}/keys`);
    });
  });
  return form;
}

async function edit(main, ctx, id) {
  const form = documentForm({
    label: "Profile",
    doc: await api("GET", tenantPath(id)),
    actions: [h("button", { type: "button", class: "quiet", onclick: () => remove(ctx, id) }, "Delete tenant")],
    save: async (doc) => {
      await api("PUT", tenantPath(id), doc);
      toast(`Tenant ${id} saved`);
      ctx.go("#/tenants");
    },
  });
  main.replaceChildren(h("h1", {}, `Tenant ${id}`), form);
}

function remove(ctx, id) {
  const what = `Delete tenant ${id} with its keys, sources, destinations, channels, integrations and LLM routes? This cannot be undone.`;
  return confirmThen(what, { typed: id }, async () => {
    await api("DELETE", `${tenantPath(id)}?confirm=${encodeURIComponent(id)}`);
    toast(`Tenant ${id} deleted`);
    await ctx.tenantsChanged();
    ctx.go("#/tenants");
  });
}
