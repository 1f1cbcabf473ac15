// The specialist view: every figure of the report, per-leg tables, the PLM series, the
// zoomable signal, nights side by side, and sharing the child with a clinician.

import { api, query } from "./api.js";
import { clockSeconds, dateShort, dayTime, duration, hourOfDay, hoursMinutes, num, pct, unix } from "./format.js";
import { pick } from "./pickers.js";
import { mayWrite, showError } from "./session.js";
import { signalView } from "./signal.js";
import { responsive } from "./svg.js";
import { definitions, table } from "./table.js";
import { timeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const MAX_COMPARE = 7;
const seconds = (item) => unix(item.end) - unix(item.start);

function showFigures(report, night, zone) {
  const at = (iso) => (iso === null ? "–" : dayTime(unix(iso), zone));
  const epochs = (state) => hoursMinutes([...report.sleep.epochs].filter((e) => e === state).length / 2);
  const lms = report.leg_movements;
  const box = $("figures");
  box.replaceChildren(
    definitions("Recording", [
      ["Start", at(report.recording.start)], ["End", at(report.recording.end)],
      ["Length", duration(seconds(report.recording))],
      ...report.sensors.map((s) => [`${s.side} sensor`, `${s.sample_rate_hz} Hz, coverage ${pct(s.coverage)}, ` +
        `off the ankle ${hoursMinutes(s.nonwear.reduce((sum, n) => sum + seconds(n), 0) / 60)}`]),
      ["Age (months)", num(report.age_months)], ["Algorithm", `${report.algorithm_version} (${report.plm.rules})`],
      ["Schema", String(report.schema_version)],
      ...report.warnings.map((w, i) => [`Warning ${i + 1}`, w]),
    ]),
    definitions("Sleep", [
      ["Onset", at(report.sleep.onset)], ["Offset", at(report.sleep.offset)],
      ["Total sleep", hoursMinutes(report.sleep.total_sleep_min)], ["Efficiency", pct(report.sleep.efficiency)],
      ["WASO", hoursMinutes(report.sleep.waso_min)], ["Awakenings", String(report.sleep.awakenings)],
      ["Epochs S / W / N", `${epochs("S")} / ${epochs("W")} / ${epochs("N")} (30 s each)`],
    ]),
    definitions("Leg movements (WASM 2016 unless stated)", [
      ["LMs (per leg entries)", String(lms.length)],
      ["LMs in sleep", String(lms.filter((l) => l.in_sleep).length)],
      ["Candidate LMs", String(lms.filter((l) => l.candidate).length)],
      ["LM index (CLM / h sleep)", num(report.plm.lm_index, 2)],
      ["PLMS count", String(report.plm.count)], ["PLMS index (/h)", num(report.plm.index, 2)],
      ["Periodicity index", num(report.plm.periodicity_index, 3)],
      ["PLM series", String(report.plm.series.length)], ["Brief jerks (< 0.5 s)", String(report.brief_jerks)],
    ]),
  );
  const method = document.createElement("p");
  method.className = "small";
  method.textContent = `Sleep/wake method: ${report.sleep.method}`;
  box.append(method);
  box.append(table("Tremor episodes", ["Start", "End", "Length", "Side", "Frequency"],
    report.tremor_episodes.map((t) => [at(t.start), at(t.end), duration(seconds(t)), t.side, `${num(t.frequency_hz)} Hz`])));
  for (const f of report.flags) {
    box.append(definitions(`Flag ${f.code} (${f.severity})`, [
      ["Message", f.message], ...Object.entries(f.evidence).map(([k, v]) => [k, String(v ?? "–")])]));
  }
  $("disclaimer").textContent = report.disclaimer;
  $("title").textContent = `Specialist view: night of ${dateShort(night.date)}`;
}

function asymmetry(left, right) {
  return left + right === 0 ? "–" : `${Math.round((100 * (left - right)) / (left + right))} %`;
}

function showLegs(report, jerks) {
  const sides = report.sensors.map((s) => s.side);
  const sleepH = report.sleep.total_sleep_min / 60;
  const per = (fn) => sides.map(fn);
  const lm = (side, keep) => report.leg_movements.filter((l) => l.side === side && keep(l)).length;
  const tremorMin = (side) => report.tremor_episodes.filter((t) => t.side === side || t.side === "bilateral")
    .reduce((sum, t) => sum + seconds(t), 0) / 60;
  const jerkCount = (side) => jerks.filter((j) => j.side === side || j.side === "bilateral").length;
  const rows = [
    ["LMs", (s) => lm(s, () => true)],
    ["LMs in sleep", (s) => lm(s, (l) => l.in_sleep)],
    ["Candidate LMs in sleep", (s) => lm(s, (l) => l.in_sleep && l.candidate)],
    ["Periodic LMs (in PLM series)", (s) => lm(s, (l) => l.periodic)],
    ["Part of a bilateral LM", (s) => lm(s, (l) => l.bilateral_group !== null)],
    ["Brief jerks (bilateral in both)", jerkCount],
    ["Tremor minutes (bilateral in both)", tremorMin],
  ];
  const body = rows.map(([name, fn]) => {
    const values = per(fn);
    const shown = values.map((v) => (Number.isInteger(v) ? String(v) : num(v)));
    return [name, ...shown, sides.length === 2 ? asymmetry(values[0], values[1]) : "–"];
  });
  body.push(["LMs in sleep per hour", ...per((s) => num(sleepH > 0 ? lm(s, (l) => l.in_sleep) / sleepH : null)), "–"]);
  $("legs").replaceChildren(table("Per leg; asymmetry = (left − right) / (left + right)",
    ["Figure", ...sides.map((s) => (s === "left" ? "Left" : "Right")), "Asymmetry"], body));
}

function showSeries(report, zone) {
  $("series").replaceChildren(table(`${report.plm.series.length} PLM series`, ["#", "Start", "End", "Length", "LMs", "LMs per minute"],
    report.plm.series.map((s, i) => [String(i + 1), clockSeconds(unix(s.start), zone), clockSeconds(unix(s.end), zone),
      duration(seconds(s)), String(s.count), num(s.count / Math.max(seconds(s) / 60, 1 / 60))])));
}

// seconds after local noon: lines nights up by clock time
const afterNoon = (t, zone) => (((hourOfDay(t, zone) - 12) % 24) + 24) % 24 * 3600;

async function showCompare(chosen, zone) {
  const [rows, reports] = await Promise.all([
    Promise.all(chosen.map((n) => api(`/subjects/${encodeURIComponent(n.subject_id)}/trends?${query({ from: n.date, to: n.date })}`))),
    Promise.all(chosen.map((n) => api(`/nights/${n.id}/report`))),
  ]);
  const figures = [
    ["Total sleep", (r) => hoursMinutes(r.total_sleep_min ?? 0)], ["Efficiency", (r) => pct(r.efficiency)],
    ["WASO", (r) => hoursMinutes(r.waso_min ?? 0)], ["Awakenings", (r) => String(r.awakenings ?? "–")],
    ["PLMS index (/h)", (r) => num(r.plm_index, 2)], ["Periodicity index", (r) => num(r.periodicity_index, 3)],
    ["Tremor minutes", (r) => num(r.tremor_min)], ["Non-wear minutes", (r) => num(r.nonwear_min)],
    ["Coverage", (r) => pct(r.coverage)],
  ];
  const body = figures.map(([name, fn]) => [name, ...rows.map((r) => (r.length ? fn(r[0]) : "–"))]);
  body.push(["Flags", ...chosen.map((n) => n.flags.join(", ") || "none")]);
  $("compare").replaceChildren(table("Nights side by side", ["Figure", ...chosen.map((n) => dateShort(n.date))], body));
  const offsets = reports.flatMap((r) => [unix(r.recording.start), unix(r.recording.end)].map((t) => afterNoon(t, zone)));
  const [lo, hi] = [Math.min(...offsets), Math.max(...offsets)];
  const strips = $("compare-strips");
  strips.replaceChildren();
  reports.forEach((report, i) => {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    caption.textContent = `Night of ${dateShort(chosen[i].date)}`;
    const holder = document.createElement("div");
    holder.className = "chart";
    figure.append(caption, holder);
    strips.append(figure);
    const start = unix(report.recording.start);
    const noon = start - afterNoon(start, zone);
    responsive(holder, (width) => timeline(report, [], zone, width, {
      compact: true, range: [noon + lo, noon + hi], label: `Sleep and leg movements, night of ${dateShort(chosen[i].date)}` }));
  });
}

function comparePicker(nights, night, zone) {
  const ready = nights.filter((n) => n.status === "ready");
  const box = $("compare-pick");
  const start = ready.indexOf(ready.find((n) => n.id === night.id));
  const initial = new Set(ready.slice(start, start + 3).map((n) => n.id));
  for (const n of ready) {
    const label = document.createElement("label");
    const check = document.createElement("input");
    check.type = "checkbox";
    check.value = n.id;
    check.checked = initial.has(n.id);
    label.append(check, ` ${dateShort(n.date)}`);
    box.append(label);
  }
  const update = () => {
    const boxes = [...box.querySelectorAll("input")];
    const chosen = ready.filter((n) => boxes.find((b) => Number(b.value) === n.id).checked).reverse();
    for (const b of boxes) b.disabled = !b.checked && chosen.length >= MAX_COMPARE;
    showCompare(chosen, zone).catch(showError);
  };
  box.addEventListener("change", update);
  update();
}

async function showShares(subject) {
  const list = $("shares");
  const path = `/subjects/${encodeURIComponent(subject.id)}/shares`;
  const draw = async () => {
    const shares = await api(path);
    list.replaceChildren();
    if (shares.length === 0) list.append(Object.assign(document.createElement("li"), { textContent: `${subject.name} is not shared with anyone.` }));
    for (const share of shares) {
      const li = document.createElement("li");
      const stop = document.createElement("button");
      stop.type = "button";
      stop.textContent = `Stop sharing with ${share.token_name}`;
      stop.addEventListener("click", async () => {
        await api(`${path}/${encodeURIComponent(share.token_name)}`, { method: "DELETE" });
        $("share-status").textContent = `${share.token_name} can no longer see ${subject.name}.`;
        await draw();
      });
      li.append(`${share.token_name} `, stop);
      list.append(li);
    }
  };
  $("share-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("share-name").value.trim();
    try {
      await api(path, { method: "POST", body: { token_name: name } });
      $("share-status").textContent = `${name} can now see ${subject.name}'s nights.`;
      $("share-name").value = "";
      await draw();
    } catch (error) {
      $("share-status").textContent = `Not shared: ${error.message}`;
    }
  });
  $("sharing").hidden = false;
  await draw();
}

async function main() {
  const { subject, nights, night } = await pick();
  if (!night) {
    $("title").textContent = subject ? "No analysed night yet" : "This token may not see any child";
    return;
  }
  const zone = subject.time_zone;
  const [report, jerks] = await Promise.all([
    api(`/nights/${night.id}/report`), api(`/nights/${night.id}/events?type=jerk`)]);
  showFigures(report, night, zone);
  showLegs(report, jerks);
  showSeries(report, zone);
  signalView({ container: $("signal"), controls: $("signal-controls"), status: $("signal-window"), night, report, zone });
  comparePicker(nights, night, zone);
  if (mayWrite(subject.id)) await showShares(subject);
  document.body.dataset.ready = "1";
}

main().catch(showError);
