// The webhook event log (filtered, a page at a time, each event with its deliveries and every
// attempt, and a retry), the dead letters with replay, and the MCP tool calls the log keeps.
import { api, tenantPath, query } from "./api.js";
import { h, field, table, toast, busy, badge, when, confirmThen } from "./ui.js";

const TONE = { delivered: "ok", failed: "bad", dead_lettered: "bad", pending: "warn", retrying: "warn" };
const OUTCOME_TONE = { started: "warn", ok: "ok", tool_error: "warn", blocked: "bad", denied: "bad", unknown: "warn", cancelled: "warn" };

export async function log(main, ctx) {
  const [id] = ctx.rest;
  if (id) return detail(main, ctx, id);
  const source = h("input", { autocomplete: "off" });
  const type = h("input", { autocomplete: "off", placeholder: "stripe.invoice.*" });
  const status = h("select", {}, ["", "delivered", "pending", "failed", "filtered", "no_destination"].map((s) => h("option", { value: s }, s || "any")));
  const follow = h("input", { type: "checkbox" });
  const form = h("form", { class: "row", "aria-label": "Filter events" },
    field("Source", source), field("Type", type), field("Status", status),
    h("div", { class: "field fit" }, h("button", { type: "submit" }, "Filter")),
    h("div", { class: "field fit" }, h("label", {}, follow, " Follow new events")));
  const list = h("div");
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Older events");
  const show = (rows) => list.replaceChildren(table(`Events of ${ctx.tenant}, newest first`, [
    ["Event", (e) => h("a", { href: `#/t/${encodeURIComponent(ctx.tenant)}/events/${encodeURIComponent(e.id)}` }, h("code", {}, e.id))],
    ["Type", (e) => e.type],
    ["Source", (e) => e.source],
    ["Received", (e) => when(e.received_at)],
    ["Status", (e) => badge(e.status, TONE[e.status])],
    ["Deliveries", (e) => e.deliveries.map((d) => `${d.destination}: ${d.state.replace("_", " ")}`).join("; ")],
  ], rows, "No events match."));
  const filters = () => ({ source: source.value.trim(), type: type.value.trim(), status: status.value });
  const load = pages(tenantPath(ctx.tenant, "events"), filters, form, more, show);
  // Following reloads the newest page every two seconds, until it is turned off or the view left.
  let timer;
  follow.addEventListener("change", () => {
    clearInterval(timer);
    if (follow.checked) {
      timer = setInterval(() => {
        if (!list.isConnected) return clearInterval(timer);
        load(true).catch(() => {});
      }, 2000);
    }
  });
  main.replaceChildren(h("h1", {}, "Event log"), form, list, more);
  await load(true);
}

async function detail(main, ctx, id) {
  const e = await api("GET", tenantPath(ctx.tenant, "events", id));
  const retry = h("button", { type: "button" }, "Retry undelivered");
  retry.addEventListener("click", () => busy(retry, async () => {
    const r = await api("POST", tenantPath(ctx.tenant, "events", id, "retry"));
    toast(`Retrying ${r.retried.length} deliveries`);
  }));
  main.replaceChildren(
    h("h1", {}, `Event ${id}`),
    h("section", { class: "panel" },
      h("p", {}, badge(e.status, TONE[e.status]), ` ${e.type} from ${e.source}, ${e.size} bytes, received ${when(e.received_at)}`),
      h("div", { class: "actions" }, h("a", { href: `#/t/${encodeURIComponent(ctx.tenant)}/events` }, "Back to the log"), retry)),
    table("Deliveries", [
      ["Destination", (d) => d.destination],
      ["State", (d) => badge(d.state.replace("_", " "), TONE[d.state])],
      ["Attempts", (d) => d.attempts, { num: true }],
      ["Last attempt", (d) => when(d.last_attempt_at)],
    ], e.deliveries, "No destination took this event."),
    h("h2", {}, "Attempts"),
    table("Every delivery attempt", [
      ["Destination", (a) => a.destination],
      ["#", (a) => a.attempt, { num: true }],
      ["At", (a) => when(a.at)],
      ["Took", (a) => `${a.duration_ms} ms`, { num: true }],
      ["Answer", (a) => (a.status ? String(a.status) : a.error ?? "")],
      ["Body", (a) => (a.answer ? h("code", {}, a.answer.slice(0, 200)) : "")],
    ], e.attempts, "No attempts yet."),
    e.body ? h("section", {}, h("h2", {}, "Body"), h("pre", {}, JSON.stringify(e.body, null, 2))) : h("p", { class: "muted" }, "The body is not kept (the tenant's event_log.keep_bodies)."),
  );
}

export async function deadLetters(main, ctx) {
  const letters = (await api("GET", tenantPath(ctx.tenant, "dead-letters")))?.data ?? [];
  const replay = async (l, button) => {
    await confirmThen(`Send ${l.id} again? It goes back on the ${l.queue} queue and leaves this list.`, { action: "Replay" }, () =>
      busy(button, async () => {
        await api("POST", tenantPath(ctx.tenant, "dead-letters", l.id, "replay"));
        toast(`${l.id} replayed`);
        ctx.go(location.hash);
      }));
  };
  main.replaceChildren(
    h("h1", {}, "Dead letters"),
    h("p", { class: "muted" }, "Deliveries and sends that failed every attempt or were refused. Replaying sends one again as it was."),
    table(`Dead letters of ${ctx.tenant}`, [
      ["Letter", (l) => h("code", {}, l.id)],
      ["Queue", (l) => l.queue],
      ["Failed", (l) => when(l.dead_at)],
      ["Attempts", (l) => l.attempts, { num: true }],
      ["Last error", (l) => l.last_error],
      ["", (l) => {
        const b = h("button", { type: "button", "aria-label": `Replay ${l.id}` }, "Replay");
        b.addEventListener("click", () => replay(l, b));
        return b;
      }],
    ], letters, "No dead letters: everything got through."),
  );
}

/**
 * A log listing read 50 rows at a time: `load(true)` reads the newest page under the form's
 * `filters()`, `load(false)` the next older one (`more` shows while there is one); `show` draws
 * every row read so far. Submitting the form reads afresh.
 */
function pages(path, filters, form, more, show) {
  let cursor = null;
  let rows = [];
  const load = async (fresh) => {
    if (fresh) (cursor = null), (rows = []);
    const page = await api("GET", path + query({ ...filters(), cursor, limit: 50 }));
    rows = rows.concat(page?.data ?? []);
    cursor = page?.next_cursor ?? null;
    more.hidden = !cursor;
    show(rows);
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    load(true).catch((e) => toast(e.message, true));
  });
  more.addEventListener("click", () => busy(more, () => load(false)));
  return load;
}

/** The tenant's MCP tool calls, newest first, filtered by tool, key and outcome. */
export async function toolCalls(main, ctx) {
  const tool = h("input", { autocomplete: "off", placeholder: "crm__get_contact" });
  const key = h("input", { autocomplete: "off", placeholder: "key_…" });
  const outcome = h("select", {}, ["", "started", "ok", "tool_error", "blocked", "denied", "unknown", "cancelled"].map((s) => h("option", { value: s }, s.replace("_", " ") || "any")));
  const form = h("form", { class: "row", "aria-label": "Filter tool calls" },
    field("Tool", tool), field("Key", key), field("Outcome", outcome),
    h("div", { class: "field fit" }, h("button", { type: "submit" }, "Filter")));
  const list = h("div");
  const more = h("button", { type: "button", class: "quiet", hidden: true }, "Older calls");
  const show = (rows) => list.replaceChildren(table(`Tool calls of ${ctx.tenant}, newest first`, [
    ["Tool", (c) => h("code", {}, c.tool)],
    ["Key", (c) => h("code", {}, c.key)],
    ["Outcome", (c) => badge(c.outcome.replace("_", " "), OUTCOME_TONE[c.outcome])],
    ["Took", (c) => `${c.duration_ms} ms`, { num: true }],
    ["Bytes", (c) => c.bytes, { num: true }],
    ["At", (c) => when(c.at)],
    ["Arguments", (c) => h("code", { title: `SHA-256 ${c.arguments_sha256}` }, c.arguments_sha256.slice(0, 12))],
  ], rows, "No tool calls match."));
  const filters = () => ({ tool: tool.value.trim(), key: key.value.trim(), outcome: outcome.value });
  const load = pages(tenantPath(ctx.tenant, "tool-calls"), filters, form, more, show);
  main.replaceChildren(
    h("h1", {}, "Tool calls"),
    h("p", { class: "muted" }, "Every MCP tools/call with an API key: the arguments are kept only as a digest. Kept 30 days."),
    form, list, more);
  await load(true);
}
