// The morning view: the night in one sentence, the flags and what to do, the timeline with
// the journal, the IMI histogram and the last 14 nights.

import { api, query } from "./api.js";
import { imiHistogram, spread, trendChart } from "./charts.js";
import { ageMonths, dateLong, num } from "./format.js";
import { pendingLine, pick } from "./pickers.js";
import { mayWrite, showError } from "./session.js";
import { responsive } from "./svg.js";
import { LEGEND, timeline } from "./timeline.js";
import { addNoteForm, noteList } from "./journal.js";
import * as words from "./words.js";

const $ = (id) => document.getElementById(id);
const TREND_DAYS = 14;

function item(parent, tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  parent.append(node);
  return node;
}

function showFlags(report) {
  const list = $("flags");
  list.replaceChildren();
  if (report.flags.length === 0) {
    item(list, "li", "flag tier-none", "Nothing in this night needs attention.");
  }
  for (const flag of report.flags) {
    const [tier, todo] = words.action(flag);
    const card = item(list, "li", `flag tier-${tier}`);
    card.dataset.code = flag.code;
    item(card, "p", "tier", words.TIERS[tier]);
    item(card, "p", "message", flag.message);
    item(card, "p", "todo", todo);
    const more = item(card, "details", "evidence");
    item(more, "summary", "", "The figures behind it");
    const figures = item(more, "dl", "");
    for (const [key, value] of Object.entries(flag.evidence)) {
      item(figures, "dt", "", key.replaceAll("_", " "));
      item(figures, "dd", "", typeof value === "number" ? String(value) : String(value ?? "–"));
    }
  }
  $("limits-short").textContent = words.LIMITS_SHORT;
  $("red-flags").textContent = words.RED_FLAGS;
  for (const line of words.LIMITS) item($("limits-list"), "li", "", line);
}

function showNormal(subject, night, report) {
  const age = ageMonths(subject.birth_date, night.date);
  if (age === null || age >= words.YOUNG_BABY_MONTHS) return;
  const box = $("normal-text");
  const ul = item(box, "ul", "");
  for (const line of words.NORMAL_YOUNG) item(ul, "li", "", line);
  item(box, "p", "", words.jerksLine(report));
  $("normal").hidden = false;
}

function showTimeline(report, events, zone) {
  responsive($("timeline"), (width) => timeline(report, events, zone, width));
  const legend = $("legend");
  legend.replaceChildren();
  for (const [colour, name] of LEGEND) {
    const li = item(legend, "li", "");
    const swatch = item(li, "span", "swatch");
    swatch.style.background = colour;
    li.append(name);
  }
  noteList($("notes"), events.filter((e) => e.type === "journal"), zone);
}

function trendDays(last) {
  const end = Date.parse(`${last}T12:00:00Z`);
  return Array.from({ length: TREND_DAYS }, (_, i) =>
    new Date(end - (TREND_DAYS - 1 - i) * 86400e3).toISOString().slice(0, 10));
}

function showTrend(rows, night) {
  const days = trendDays(night.date);
  const plm = spread(rows, (r) => r.plm_index);
  const caveat = "One night's figure says little: it changes a lot from night to night, so look at the pattern.";
  $("trend-text").textContent = plm === null ? "No analysed nights yet."
    : plm.n < 3 ? `Only ${plm.n === 1 ? "this night" : "2 nights"} so far. ${caveat}`
    : `Repeating leg movements per hour of sleep: median ${num(plm.median)} over ${plm.n} nights ` +
      `(range ${num(plm.lo)} to ${num(plm.hi)}). ${caveat}`;
  responsive($("trend-plm"), (width) => trendChart(rows, days, (r) => r.plm_index, {
    width, label: "Repeating leg movements per hour of sleep, night by night, with the median and the range",
    unit: "/h", current: night.id, limit: 5 }));
  responsive($("trend-sleep"), (width) => trendChart(rows, days,
    (r) => (r.total_sleep_min === null ? null : r.total_sleep_min / 60), {
      width, label: "Hours of sleep, night by night, with the median and the range", unit: "h", current: night.id }));
}

async function main() {
  const { subject, nights, night } = await pick();
  if (!night) {
    $("summary").textContent = subject ? "No analysed night yet." : "This token may not see any child.";
    return;
  }
  const zone = subject.time_zone;
  $("title").textContent = `${subject.name}: night of ${dateLong(night.date)}`;
  if (!new URLSearchParams(location.search).has("night")) {
    const pending = pendingLine(nights, night);
    $("pending").textContent = pending;
    $("pending").hidden = pending === "";
  }
  const eventsPath = `/nights/${night.id}/events?${query({ type: ["jerk", "gap", "nonwear", "journal"] })}`;
  const first = new Date(Date.parse(`${night.date}T12:00:00Z`) - (TREND_DAYS - 1) * 86400e3);
  const [report, events, rows] = await Promise.all([
    api(`/nights/${night.id}/report`),
    api(eventsPath),
    api(`/subjects/${encodeURIComponent(subject.id)}/trends?${query({ from: first.toISOString().slice(0, 10), to: night.date })}`),
  ]);
  $("summary").textContent = words.nightSentence(report, subject.name, zone);
  showFlags(report);
  showNormal(subject, night, report);
  showTimeline(report, events, zone);
  responsive($("imi"), (width) => imiHistogram(report.plm.imi_histogram, width));
  showTrend(rows, night);
  if (mayWrite(subject.id)) {
    $("journal").hidden = false;
    addNoteForm(subject, zone, async () => {
      const fresh = await api(eventsPath);
      showTimeline(report, fresh, zone);
      return fresh.filter((e) => e.type === "journal").map((e) => e.note_id);
    });
  }
  performance.mark("lw-rendered");
  document.body.dataset.ready = "1";
}

main().catch(showError);
