// The IMI histogram and the night-to-night trend, in plain SVG.

import { dateShort, num } from "./format.js";
import { COLOURS, el, picture, tip } from "./svg.js";

const PAD = { left: 36, right: 8, top: 10, bottom: 28 };
const text = (svg, x, y, words, anchor = "middle") =>
  el("text", { x, y, "text-anchor": anchor, "font-size": 11, fill: COLOURS.ink }, svg, words);

// bars of inter-movement intervals; the 10-90 s range of a PLM series shaded
export function imiHistogram(histogram, width, height = 150) {
  const { edges_s: edges, counts } = histogram;
  const total = counts.reduce((a, b) => a + b, 0);
  const svg = picture(width, height, `Histogram of ${total} intervals between leg movements in sleep`);
  const x0 = edges[0];
  const x1 = edges.at(-1);
  const top = Math.max(1, ...counts);
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (s) => PAD.left + ((s - x0) / (x1 - x0)) * plotW;
  const y = (n) => PAD.top + plotH - (n / top) * plotH;
  el("rect", { x: x(Math.max(10, x0)), y: PAD.top, width: x(Math.min(90, x1)) - x(Math.max(10, x0)),
    height: plotH, fill: COLOURS.series }, svg);
  counts.forEach((n, i) => {
    if (n === 0) return;
    tip(el("rect", { x: x(edges[i]) + 0.5, y: y(n), width: Math.max(x(edges[i + 1]) - x(edges[i]) - 1, 1),
      height: y(0) - y(n), fill: COLOURS.periodic, "data-kind": "imi-bar" }, svg),
    `${n} intervals of ${edges[i]}–${edges[i + 1]} s`);
  });
  el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(0), y2: y(0), stroke: COLOURS.ink }, svg);
  const step = x1 - x0 > 100 ? 30 : 10;
  for (let s = Math.ceil(x0 / step) * step; s <= x1; s += step) text(svg, x(s), height - 14, `${s}`);
  text(svg, PAD.left + plotW / 2, height - 2, "seconds between movements");
  text(svg, PAD.left - 4, y(top) + 4, `${top}`, "end");
  text(svg, PAD.left - 4, y(0), "0", "end");
  return svg;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// one dot per night over `days` (ISO dates, oldest first), the median line and the range band;
// `value(row)` is the figure, `current` the night id drawn larger
export function trendChart(rows, days, value, { width, height = 140, label, unit, current, limit = null }) {
  const points = rows.map((r) => ({ row: r, v: value(r) })).filter((p) => p.v !== null && p.v !== undefined);
  const svg = picture(width, height, label);
  if (points.length === 0) return svg;
  const values = points.map((p) => p.v);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const mid = median(values);
  const top = Math.max(hi, limit ?? 0) * 1.15 || 1;
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const slot = plotW / days.length;
  const x = (day) => PAD.left + (days.indexOf(day) + 0.5) * slot;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  tip(el("rect", { x: PAD.left, y: y(hi), width: plotW, height: Math.max(y(lo) - y(hi), 1), fill: COLOURS.band,
    "data-kind": "range" }, svg), `Range ${num(lo)}–${num(hi)} ${unit}`);
  el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(mid), y2: y(mid), stroke: COLOURS.median,
    "stroke-width": 2, "data-kind": "median" }, svg);
  if (limit !== null) {
    el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(limit), y2: y(limit), stroke: COLOURS.highlight,
      "stroke-dasharray": "4 3" }, svg);
    text(svg, width - PAD.right, y(limit) - 3, `${limit} ${unit}`, "end");
  }
  el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(0), y2: y(0), stroke: COLOURS.ink }, svg);
  for (const { row, v } of points) {
    const now = row.night_id === current;
    tip(el("circle", { cx: x(row.date), cy: y(v), r: now ? 6 : 4, fill: now ? COLOURS.highlight : COLOURS.median,
      stroke: "#fff", "stroke-width": 1.5, "data-kind": now ? "night-current" : "night" }, svg),
    `${dateShort(row.date)}: ${num(v)} ${unit}`);
  }
  text(svg, PAD.left - 4, y(0), "0", "end");
  if (y(0) - y(mid) > 14) text(svg, PAD.left - 4, y(mid) + 4, num(mid), "end");
  if (y(mid) - y(hi) > 14) text(svg, PAD.left - 4, y(hi) + 4, num(hi), "end");
  text(svg, x(days[0]), height - 10, dateShort(days[0]), "start");
  text(svg, x(days.at(-1)), height - 10, dateShort(days.at(-1)), "end");
  return svg;
}

export function spread(rows, value) {
  const values = rows.map(value).filter((v) => v !== null && v !== undefined);
  if (values.length === 0) return null;
  return { n: values.length, median: median(values), lo: Math.min(...values), hi: Math.max(...values) };
}
