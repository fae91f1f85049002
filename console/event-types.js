// The event catalog (`GET /v1/event-types`, public): every type of event the gateway delivers,
// with what each is, the source kinds that send it, an example and its JSON Schema; and the
// picker a destination's editor uses to add a type to its `filter.types`.
import { api } from "./api.js";
import { h, field, table, badge, toast } from "./ui.js";

let cached = null;

/** The catalog's entries, read once per page (a failed read is tried again next time). */
export async function entries() {
  cached ??= api("GET", "/v1/event-types").then(
    (r) => r?.data ?? [],
    (e) => {
      cached = null;
      throw e;
    },
  );
  return cached;
}

/** A type as the picker names it: `*` is every event of every source, not a sender's own. */
const EVERY = "*";
const label = (type) => (type === EVERY ? "* (every event)" : type);

const json = (label, value) => h("details", {}, h("summary", {}, label), h("pre", {}, JSON.stringify(value, null, 2)));

export async function render(main) {
  const list = await entries();
  main.replaceChildren(
    h("h1", {}, "Event types"),
    h("p", { class: "muted" }, "Every event the gateway delivers, with the JSON Schema of the delivered body. A type ending in * stands for every type it starts; each is a valid destination filter type. Also at /v1/event-types."),
    table("Event types", [
      ["Type", (e) => h("code", {}, e.type)],
      ["Source kinds", (e) => h("span", {}, e.source_kinds.map((k) => badge(k)))],
      ["What it is", (e) => e.description],
      ["", (e) => h("div", {}, json("Example", e.example), json("Schema", e.schema))],
    ], list, "The catalog is empty."),
  );
}

/**
 * A picker of the catalog's types beside a destination's document: the chosen type is added to
 * the document's `filter.types` (kept once), as the editor holds it now.
 */
export async function filterPicker(editor) {
  const list = await entries().catch(() => []);
  // A filter type matches events from every source: no source kinds beside it.
  const types = [...new Set(list.map((e) => e.type))];
  const pick = h("select", {}, types.map((t) => h("option", { value: t }, label(t))));
  const add = h("button", { type: "button", class: "quiet" }, "Add to filter");
  add.addEventListener("click", () => {
    let doc;
    try {
      doc = editor.read();
    } catch (e) {
      return toast(e.message, true);
    }
    const types = doc.filter?.types ?? [];
    if (!types.includes(pick.value)) doc.filter = { ...(doc.filter ?? {}), types: [...types, pick.value] };
    editor.show(doc);
    if (pick.value === EVERY) toast("* takes every event, from every source: the filter lets everything through", true);
  });
  return field("Event type", h("div", { class: "row" }, pick, add), "Adds a type from the event catalog to filter.types; a type matches events from every source that sends it");
}
