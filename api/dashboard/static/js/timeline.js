// The night as lanes over clock time: sleep/wake, each leg's movements (periodic ones and the
// PLM series marked, no data hatched), shaking, brief jerks, journal notes.

import { clock, duration, hourOfDay, unix } from "./format.js";
import { COLOURS, el, picture, tip } from "./svg.js";
import { NOTE_KINDS } from "./words.js";

const LABEL_W = 64;
let drawn = 0; // one hatch pattern id per timeline on the page
const AXIS_H = 18;

function lanes(sides, compact) {
  const lane = compact ? 12 : 24;
  const list = [["sleep", "Sleep", lane]];
  for (const side of sides) list.push([side, `${side === "left" ? "Left" : "Right"} leg`, lane]);
  if (!compact) list.push(["tremor", "Shaking", lane], ["jerk", "Jerks", lane], ["journal", "Notes", lane]);
  return list;
}

// the span shown: the recording, widened to the notes of the night
function span(report, notes) {
  const times = notes.map((n) => unix(n.start));
  return [Math.min(unix(report.recording.start), ...times), Math.max(unix(report.recording.end), ...times)];
}

function sleepRuns(report) {
  const start = unix(report.recording.start);
  const epochs = report.sleep.epochs;
  const runs = [];
  for (let i = 0; i < epochs.length; i++) {
    const last = runs.at(-1);
    if (last && last.state === epochs[i]) last.end += 30;
    else runs.push({ state: epochs[i], start: start + 30 * i, end: start + 30 * (i + 1) });
  }
  return runs;
}

function hourTicks(t0, t1, zone, x, svg, height) {
  const hours = (t1 - t0) / 3600;
  const step = hours > 16 ? 4 : hours > 8 ? 2 : 1;
  const first = t0 + (Math.ceil(hourOfDay(t0, zone) / step) * step - hourOfDay(t0, zone)) * 3600;
  for (let t = first; t <= t1; t += step * 3600) {
    el("line", { x1: x(t), x2: x(t), y1: AXIS_H - 4, y2: height, stroke: COLOURS.grid }, svg);
    el("text", { x: x(t), y: AXIS_H - 6, "text-anchor": "middle", "font-size": 11, fill: COLOURS.ink }, svg,
      clock(t, zone));
  }
}

// an SVG timeline `width` px wide; notes are journal events; compact: sleep and legs only;
// range: [t0, t1] to show instead of the night's own span (to line nights up)
export function timeline(report, events, zone, width, { compact = false, label = "", range = null } = {}) {
  const notes = events.filter((e) => e.type === "journal");
  const [t0, t1] = range ?? span(report, notes);
  const sides = report.sensors.map((s) => s.side);
  const rows = lanes(sides, compact);
  const height = AXIS_H + rows.reduce((sum, [, , h]) => sum + h + 4, 0);
  const plotW = Math.max(width - LABEL_W - 8, 40);
  const x = (t) => LABEL_W + ((t - t0) / Math.max(t1 - t0, 1)) * plotW;
  const w = (a, b) => Math.max(x(b) - x(a), 1);
  const hatchId = `nodata-${++drawn}`;
  const svg = picture(width, height, label || `Timeline of the night, ${clock(t0, zone)} to ${clock(t1, zone)}`);
  svg.classList.add("timeline");
  const y = {};
  let top = AXIS_H;
  for (const [key, name, h] of rows) {
    y[key] = [top, h];
    el("text", { x: 0, y: top + h / 2 + 4, "font-size": compact ? 10 : 12, fill: COLOURS.ink }, svg, name);
    el("rect", { x: LABEL_W, y: top, width: plotW, height: h, fill: "#f7f7f7" }, svg);
    top += h + 4;
  }
  hourTicks(t0, t1, zone, x, svg, height);
  const band = (key, a, b, attrs, text) => {
    const [yy, h] = y[key];
    return tip(el("rect", { x: x(a), y: yy, width: w(a, b), height: h, ...attrs }, svg), text);
  };
  const fills = { S: COLOURS.sleep, W: COLOURS.wake, N: COLOURS.nodata };
  const names = { S: "asleep", W: "awake", N: "no data" };
  for (const run of sleepRuns(report)) {
    band("sleep", run.start, run.end, { fill: fills[run.state], "data-kind": `sleep-${run.state}` },
      `${clock(run.start, zone)}–${clock(run.end, zone)} ${names[run.state]}`);
  }
  for (const series of report.plm.series) {
    for (const side of sides) {
      band(side, unix(series.start), unix(series.end), { fill: COLOURS.series, "data-kind": "plm_series" },
        `Repeating series of ${series.count} movements, ${clock(unix(series.start), zone)}–${clock(unix(series.end), zone)}`);
    }
  }
  for (const e of events) {
    if ((e.type === "gap" || e.type === "nonwear") && y[e.side]) {
      band(e.side, unix(e.start), unix(e.end), { fill: `url(#${hatchId})`, "data-kind": e.type },
        `${e.type === "gap" ? "No data" : "Sensor off the ankle"} ${clock(unix(e.start), zone)}–${clock(unix(e.end), zone)}`);
    }
  }
  const defs = el("defs", {}, svg);
  const hatch = el("pattern", { id: hatchId, width: 6, height: 6, patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)" }, defs);
  el("rect", { width: 6, height: 6, fill: "#ececec" }, hatch);
  el("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#9e9e9e", "stroke-width": 2 }, hatch);
  for (const lm of report.leg_movements) {
    const [yy, h] = y[lm.side];
    const a = unix(lm.start);
    const b = unix(lm.end);
    tip(el("rect", { x: x(a), y: yy + h * 0.2, width: w(a, b), height: h * 0.6,
      fill: lm.periodic ? COLOURS.periodic : COLOURS.lm, "data-kind": lm.periodic ? "plm" : "lm" }, svg),
    `${lm.periodic ? "Repeating" : "Single"} leg movement ${clock(a, zone)}, ${duration(b - a)}`);
  }
  if (compact) return svg;
  for (const spell of report.tremor_episodes) {
    band("tremor", unix(spell.start), unix(spell.end), { fill: COLOURS.tremor, "data-kind": "tremor" },
      `Shaking (${spell.side}, about ${Math.round(spell.frequency_hz)} per second) ` +
      `${clock(unix(spell.start), zone)}, ${duration(unix(spell.end) - unix(spell.start))}`);
  }
  for (const jerk of events.filter((e) => e.type === "jerk")) {
    const [yy, h] = y.jerk;
    tip(el("rect", { x: x(unix(jerk.start)), y: yy + 3, width: 1, height: h - 6, fill: COLOURS.jerk,
      "data-kind": "jerk" }, svg), `Brief jerk ${clock(unix(jerk.start), zone)}${jerk.side ? ` (${jerk.side})` : ""}`);
  }
  for (const note of notes) {
    const [yy, h] = y.journal;
    const cx = x(unix(note.start));
    tip(el("path", { d: `M${cx - 6},${yy + 2} h12 l-6,${h - 4} z`, fill: COLOURS.note, "data-kind": "journal",
      "data-note-id": note.note_id }, svg),
    `${clock(unix(note.start), zone)} ${NOTE_KINDS[note.kind]}${note.text ? `: ${note.text}` : ""}`);
  }
  return svg;
}

export const LEGEND = [
  [COLOURS.sleep, "Asleep"], [COLOURS.wake, "Awake"], ["#bdbdbd", "No data or sensor off"],
  [COLOURS.lm, "Leg movement"], [COLOURS.periodic, "Repeating movement"], [COLOURS.series, "Repeating series"],
  [COLOURS.tremor, "Shaking"], [COLOURS.jerk, "Brief jerk"], [COLOURS.note, "Note"],
];
