// Stacked bar charts drawn as SVG: one bar per day, one colour per series, each piece titled
// with its numbers for a pointer or a screen reader, and the same numbers in a table beside.
import { h } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#1a5fd0", "#d0601a", "#13803f", "#8a3ab9", "#b3261e", "#00838f", "#6d5d00", "#5f6b7a"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A rounded top for the axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
}

/**
 * `days`: the x labels; `series`: [{name, values}] with one value per day; `format`: a number
 * as text. Returns a <figure> holding the chart and its legend.
 */
export function stackedBars(title, days, series, format = (v) => String(v)) {
  const W = 400, H = 220, left = 74, bottom = 26, top = 10, right = 6;
  const totals = days.map((_, i) => series.reduce((sum, x) => sum + (x.values[i] ?? 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const plotH = H - top - bottom;
  const step = (W - left - right) / Math.max(days.length, 1);
  const barW = Math.max(2, Math.min(40, step * 0.7));
  const y = (v) => top + plotH - (v / max) * plotH;
  const id = `c${Math.random().toString(36).slice(2, 8)}`;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t ${id}-d` },
    s("title", { id: `${id}-t` }, title),
    s("desc", { id: `${id}-d` }, `Total ${format(totals.reduce((a, b) => a + b, 0))} over ${days.length} days`));
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    svg.append(s("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), stroke: "#d6dbe3" }),
      s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 12, fill: "#556070" }, format(v)));
  }
  const every = Math.ceil(days.length / 8);
  days.forEach((day, i) => {
    const x = left + step * i + (step - barW) / 2;
    let base = 0;
    series.forEach((ser, k) => {
      const v = ser.values[i] ?? 0;
      if (v <= 0) return;
      svg.append(s("rect", { x, y: y(base + v), width: barW, height: Math.max(1, y(base) - y(base + v)), fill: COLOURS[k % COLOURS.length], "data-value": v },
        s("title", {}, `${ser.name}, ${day}: ${format(v)}`)));
      base += v;
    });
    if (i % every === 0) svg.append(s("text", { x: x + barW / 2, y: H - 8, "text-anchor": "middle", "font-size": 12, fill: "#556070" }, day.slice(5)));
  });
  // Through the CSSOM: the page's policy refuses style attributes.
  const swatch = (ser, k) => {
    const el = h("span", {}, ser.name);
    el.style.setProperty("--swatch", COLOURS[k % COLOURS.length]);
    return el;
  };
  const legend = h("div", { class: "legend" }, series.map(swatch));
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg, legend);
}
