// Small DOM helpers: every element is built from text (never HTML), every input has a label,
// and dialogs and messages are announced to screen readers.

/** An element: `h("button", {class: "quiet", onclick: f}, "Save")`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let ids = 0;
/** A labelled form field; its control (`input`, or the first one inside it) gets an id, and
 * `help` becomes its description. */
export function field(label, input, help) {
  const control = input.matches("input, select, textarea") ? input : input.querySelector("input, select, textarea") ?? input;
  control.id ||= `f${++ids}`;
  const parts = [h("label", { for: control.id }, label), input];
  if (help) {
    const hid = `${control.id}-help`;
    control.setAttribute("aria-describedby", hid);
    parts.push(h("small", { id: hid }, help));
  }
  return h("div", { class: "field" }, parts);
}

/** A message at the corner of the screen, read out by screen readers. */
export function toast(text, bad = false) {
  const box = document.getElementById("toast");
  const line = h("div", { class: bad ? "bad" : "" }, text);
  box.append(line);
  setTimeout(() => line.remove(), bad ? 8000 : 4000);
}

/**
 * Asks before something that cannot be undone, then does `work`; a failure shows as a message.
 * `action` names the button; `typed`: the word the operator must type first.
 */
export async function confirmThen(text, { action = "Delete", typed } = {}, work) {
  if (!(await ask(text, action, typed))) return;
  try {
    await work();
  } catch (e) {
    toast(e.message, true);
  }
}

/** The confirmation dialog; resolves to true to go ahead. */
function ask(text, action, typed) {
  const dialog = document.getElementById("confirm");
  const ok = document.getElementById("confirm-ok");
  document.getElementById("confirm-text").textContent = text;
  const extra = document.getElementById("confirm-extra");
  extra.replaceChildren();
  ok.textContent = action;
  ok.disabled = false;
  if (typed) {
    const input = h("input", { autocomplete: "off", spellcheck: "false" });
    extra.append(field(`Type ${typed} to confirm`, input));
    ok.disabled = true;
    input.addEventListener("input", () => (ok.disabled = input.value !== typed));
  }
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

/** A read-only value with a button that copies it. */
export function copyable(label, value) {
  const input = h("input", { value, readOnly: true, class: "mono", "aria-label": label });
  const button = h("button", { type: "button", class: "quiet", "aria-label": `Copy ${label}` }, "Copy");
  button.addEventListener("click", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      document.execCommand?.("copy");
    }
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = "Copy"), 2000);
  });
  return h("div", { class: "copy" }, input, button);
}

/** A table: `columns` are [heading, row => cell, {num}]; a cell may be text or an element. */
export function table(caption, columns, rows, empty = "Nothing yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, columns.map(([name, , o]) => h("th", { scope: "col", class: o?.num ? "num" : "" }, name)));
  const body = rows.map((r) => h("tr", {}, columns.map(([, cell, o]) => h("td", { class: o?.num ? "num" : "" }, cell(r) ?? ""))));
  return h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, body)));
}

/** The gateway's error, shown where the operator is looking. */
export function errorBox(e) {
  return h("p", { class: "error", role: "alert" }, e?.message ?? String(e));
}

/** A coloured status word. */
export function badge(text, tone = "") {
  return h("span", { class: `badge ${tone}` }, text);
}

/** Runs `work` with `button` disabled; reports a failure as a toast (and returns undefined). */
export async function busy(button, work) {
  button.disabled = true;
  try {
    return await work();
  } catch (e) {
    toast(e.message, true);
  } finally {
    button.disabled = false;
  }
}

/** Unix seconds as a local date and time. */
export function when(s) {
  if (s === undefined || s === null || s === 0) return "";
  return new Date(s * 1000).toLocaleString();
}

/** A JSON document editor: a labelled textarea; `read()` parses it or throws a clear error. */
function jsonEditor(label, value, help) {
  const area = h("textarea", { spellcheck: "false", autocomplete: "off" });
  area.value = JSON.stringify(value ?? {}, null, 2);
  const wrap = field(label, area, help);
  wrap.read = () => {
    try {
      return JSON.parse(area.value);
    } catch (e) {
      throw new Error(`${label} is not valid JSON: ${e.message}`);
    }
  };
  wrap.show = (doc) => (area.value = JSON.stringify(doc, null, 2));
  return wrap;
}

const SECRETS_HELP = 'Secrets show as {"set": true}; leave them so to keep them, or write a new value.';

/**
 * A form editing a JSON document as the admin API takes it: `save(doc)` runs on submit, and the
 * gateway's refusal (or a JSON mistake) shows in the form. `before`: fields above the document;
 * `actions`: buttons beside Save. `form.editor.show(doc)` replaces the document.
 */
export function documentForm({ label, doc, help = SECRETS_HELP, before = [], actions = [], save }) {
  const editor = jsonEditor(label, doc, help);
  const status = h("div");
  const submit = h("button", { type: "submit" }, "Save");
  const form = h("form", { class: "panel" }, before, editor, status, h("div", { class: "actions" }, actions, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    busy(submit, async () => {
      try {
        await save(editor.read());
      } catch (e) {
        status.replaceChildren(errorBox(e));
      }
    });
  });
  form.editor = editor;
  return form;
}
