// Usage from the usage API: requests, tokens and cost per day, split by model (or route, provider,
// key, subject or MCP tool), the input by class (fresh, cached, written to the cache), as charts and as a
// table of the same numbers.
import { api, tenantPath, query } from "./api.js";
import { h, field, table } from "./ui.js";
import { stackedBars } from "./chart.js";

const DAY_S = 86400;
// Cents, or two significant digits for fractions of a cent (a few mini-model requests).
const usd = (v) => (v > 0 && v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`);
const count = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : String(Math.round(v * 10) / 10));

/** What the bars are split by: a usage API group, and what a row without it is called. */
const SPLITS = {
  model: ["Model", "other routes"],
  route: ["Route family", "?"],
  provider: ["Provider", "no provider"],
  key: ["Key", "no key"],
  subject: ["Source, channel or integration", "none"],
  tool: ["MCP tool", "not a tool call"],
};

export async function render(main, ctx) {
  const period = h("select", {}, [7, 30, 90].map((d) => h("option", { value: d }, `Last ${d} days`)));
  const split = h("select", {}, Object.entries(SPLITS).map(([k, [label]]) => h("option", { value: k }, label)));
  const body = h("div", { "aria-live": "polite" });
  main.replaceChildren(h("h1", {}, "Usage"), h("form", { class: "row" }, field("Period", period), field("Split by", split)), body);
  const load = async () => {
    const days = Number(period.value);
    const now = Math.floor(Date.now() / 1000);
    const from = now - (now % DAY_S) - (days - 1) * DAY_S;
    const r = await api("GET", tenantPath(ctx.tenant, "usage") + query({ from, to: now, group_by: `day,${split.value}` }));
    body.replaceChildren(...view(r?.data ?? [], from, days, split.value));
  };
  period.addEventListener("change", load);
  split.addEventListener("change", load);
  await load();
}

function view(rows, from, n, dim) {
  const [label, none] = SPLITS[dim];
  const name = (r) => r[dim] ?? none;
  const days = Array.from({ length: n }, (_, i) => new Date((from + i * DAY_S) * 1000).toISOString().slice(0, 10));
  const names = [...new Set(rows.map(name))].sort((a, b) => (a === none) - (b === none) || a.localeCompare(b));
  // One series a name, one value a day; a chart leaves out the series that are all zero.
  const series = (pick) =>
    names
      .map((m) => ({ name: m, values: days.map((d) => rows.filter((r) => r.day === d && name(r) === m).reduce((sum, r) => sum + pick(r), 0)) }))
      .filter((x) => x.values.some((v) => v > 0));
  const tokens = (r) => r.input_tokens + r.output_tokens;
  // The input's classes (a row from before they were counted has none: all fresh).
  const read = (r) => r.cache_read_tokens ?? 0;
  const written = (r) => r.cache_write_tokens ?? 0;
  const classes = [["Fresh input", (r) => r.input_tokens - read(r) - written(r)], ["Cached input", read], ["Cache writes", written]]
    .map(([m, pick]) => ({ name: m, values: days.map((d) => rows.filter((r) => r.day === d).reduce((sum, r) => sum + pick(r), 0)) }))
    .filter((x) => x.values.some((v) => v > 0));
  const sum = (pick) => rows.reduce((a, r) => a + pick(r), 0);
  return [
    h("p", {}, `${sum((r) => r.requests)} requests, ${sum(tokens)} tokens, ${usd(sum((r) => r.cost_usd))} over ${n} days.`),
    h("div", { class: "charts" },
      stackedBars("Requests per day", days, series((r) => r.requests), count),
      stackedBars("Tokens per day (input and output)", days, series(tokens), count),
      stackedBars("Input per day: fresh, read from and written to the prompt cache", days, classes, count),
      stackedBars("Cost per day (USD)", days, series((r) => r.cost_usd), usd)),
    h("h2", {}, `By day and ${label.toLowerCase()}`),
    table(`Usage by day and ${label.toLowerCase()}`, [
      ["Day", (r) => r.day],
      [label, name],
      ["Requests", (r) => r.requests, { num: true }],
      ["Errors", (r) => r.client_errors + r.server_errors, { num: true }],
      ["p95 ms", (r) => r.p95_ms ?? "", { num: true }],
      ["Input tokens", (r) => r.input_tokens, { num: true }],
      ["Output tokens", (r) => r.output_tokens, { num: true }],
      ["Cached input", read, { num: true }],
      ["Cache writes", written, { num: true }],
      ["Reasoning", (r) => r.reasoning_tokens ?? 0, { num: true }],
      ["Cost", (r) => usd(r.cost_usd), { num: true }],
    ], [...rows].sort((a, b) => b.day.localeCompare(a.day) || name(a).localeCompare(name(b))), "Nothing counted in this period."),
  ];
}
