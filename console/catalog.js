// The event catalog (`GET /v1/event-types`, public): every type of event the gateway delivers,
// with what each is, the source kinds that send it, an example and its JSON Schema; and the
// picker a destination's editor uses to add a type to its `filter.types`.
import { api } from "./api.js";
import { h, field, table, badge } from "./ui.js";

let cached = null;

/** The catalog's entries, read once per page. */
export async function entries() {
  cached ??= api("GET", "/v1/event-types").then((r) => r?.data ?? []);
  return cached;
}

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
  const pick = h("select", {}, list.map((e) => h("option", { value: e.type }, `${e.type} (${e.source_kinds.join(", ")})`)));
  const add = h("button", { type: "button", class: "quiet" }, "Add to filter");
  add.addEventListener("click", () => {
    const doc = editor.read();
    const types = doc.filter?.types ?? [];
    if (!types.includes(pick.value)) doc.filter = { ...(doc.filter ?? {}), types: [...types, pick.value] };
    editor.show(doc);
  });
  return field("Event type", h("div", { class: "row" }, pick, add), "Adds a type from the event catalog to filter.types");
}
