// Usage from the usage API: requests, tokens and cost per day and model, as charts and as a
// table of the same numbers.
import { api, tenantPath, query } from "./api.js";
import { h, field, table } from "./ui.js";
import { stackedBars } from "./chart.js";

const DAY_S = 86400;
// Cents, or two significant digits for fractions of a cent (a few mini-model requests).
const usd = (v) => (v > 0 && v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`);
const count = (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : String(Math.round(v * 10) / 10));

export async function render(main, ctx) {
  const period = h("select", {}, [7, 30, 90].map((d) => h("option", { value: d }, `Last ${d} days`)));
  const body = h("div", { "aria-live": "polite" });
  main.replaceChildren(h("h1", {}, "Usage"), h("form", { class: "row" }, field("Period", period)), body);
  const load = async () => {
    const days = Number(period.value);
    const now = Math.floor(Date.now() / 1000);
    const from = now - (now % DAY_S) - (days - 1) * DAY_S;
    const r = await api("GET", tenantPath(ctx.tenant, "usage") + query({ from, to: now, group_by: "day,model" }));
    body.replaceChildren(...view(r?.data ?? [], from, days));
  };
  period.addEventListener("change", () => load());
  await load();
}

function view(rows, from, n) {
  const days = Array.from({ length: n }, (_, i) => new Date((from + i * 86400) * 1000).toISOString().slice(0, 10));
  const models = [...new Set(rows.map((r) => r.model ?? "other routes"))].sort((a, b) => (a === "other routes") - (b === "other routes") || a.localeCompare(b));
  const series = (pick) => models.map((m) => ({
    name: m,
    values: days.map((d) => rows.filter((r) => r.day === d && (r.model ?? "other routes") === m).reduce((sum, r) => sum + pick(r), 0)),
  }));
  const llm = models.filter((m) => m !== "other routes");
  const llmSeries = (pick) => series(pick).filter((x) => llm.includes(x.name));
  const sum = (pick) => rows.reduce((a, r) => a + pick(r), 0);
  return [
    h("p", {}, `${sum((r) => r.requests)} requests, ${sum((r) => r.input_tokens + r.output_tokens)} tokens, ${usd(sum((r) => r.cost_usd))} over ${n} days.`),
    h("div", { class: "charts" },
      stackedBars("Requests per day", days, series((r) => r.requests), count),
      stackedBars("Tokens per day (input and output)", days, llmSeries((r) => r.input_tokens + r.output_tokens), count),
      stackedBars("Cost per day (USD)", days, llmSeries((r) => r.cost_usd), usd)),
    h("h2", {}, "By day and model"),
    table("Usage by day and model", [
      ["Day", (r) => r.day],
      ["Model", (r) => r.model ?? "other routes"],
      ["Requests", (r) => r.requests, { num: true }],
      ["Errors", (r) => r.client_errors + r.server_errors, { num: true }],
      ["p95 ms", (r) => r.p95_ms ?? "", { num: true }],
      ["Input tokens", (r) => r.input_tokens, { num: true }],
      ["Output tokens", (r) => r.output_tokens, { num: true }],
      ["Cost", (r) => usd(r.cost_usd), { num: true }],
    ], [...rows].sort((a, b) => b.day.localeCompare(a.day) || (a.model ?? "").localeCompare(b.model ?? "")), "Nothing counted in this period."),
  ];
}
