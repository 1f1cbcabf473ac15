// The zoomable signal view (uPlot, vendored): one leg's x, y, z as min/max bands per bucket
// from /nights/{id}/signal. Every zoom or pan asks for the new window at about one bucket per
// pixel, so the raw night never reaches the browser.

import { api, query } from "./api.js";
import { clock, clockSeconds, duration, unix } from "./format.js";

const AXES = [["x", "#1565c0"], ["y", "#2e7d32"], ["z", "#ad1457"]];
const MIN_WINDOW_S = 10;

function columns(answer, a, b, points) {
  const width = (b - a) / points;
  const time = [];
  const cols = Array.from({ length: 6 }, () => []);
  answer.time.forEach((iso, i) => {
    const t = unix(iso);
    if (time.length && t - time.at(-1) > 1.5 * width) { // an empty stretch: break the lines
      time.push(time.at(-1) + width);
      for (const col of cols) col.push(null);
    }
    time.push(t);
    for (let k = 0; k < 3; k++) {
      cols[2 * k].push(answer.max[i][k]);
      cols[2 * k + 1].push(answer.min[i][k]);
    }
  });
  return [time, ...cols];
}

function shade(lms) {
  return (u) => {
    const { ctx } = u;
    const [lo, hi] = [u.scales.x.min, u.scales.x.max];
    ctx.save();
    for (const lm of lms) {
      if (lm.b < lo || lm.a > hi) continue;
      const x0 = u.valToPos(Math.max(lm.a, lo), "x", true);
      const x1 = u.valToPos(Math.min(lm.b, hi), "x", true);
      ctx.fillStyle = lm.periodic ? "rgba(106, 27, 154, 0.16)" : "rgba(91, 112, 131, 0.14)";
      ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 1), u.bbox.height);
    }
    ctx.restore();
  };
}

export function signalView({ container, controls, status, night, report, zone }) {
  const sides = report.sensors.map((s) => s.side);
  const sideSelect = controls.querySelector("#signal-side");
  for (const side of sides) sideSelect.append(new Option(side === "left" ? "Left" : "Right", side));
  const whole = [unix(report.recording.start), unix(report.recording.end)];
  let view = [...whole];
  let pending = null;
  const lmsOf = (side) => report.leg_movements.filter((lm) => lm.side === side)
    .map((lm) => ({ a: unix(lm.start), b: unix(lm.end), periodic: lm.periodic }));
  let lms = lmsOf(sideSelect.value);

  const series = [{ label: "Time", value: (u, t) => (t === null ? "–" : clockSeconds(t, zone)) }];
  for (const [axis, colour] of AXES) {
    series.push({ label: `${axis} max`, stroke: colour, width: 1 }, { label: `${axis} min`, stroke: colour, width: 1 });
  }
  const plot = new uPlot({
    width: container.clientWidth,
    height: 280,
    tzDate: (t) => uPlot.tzDate(new Date(t * 1e3), zone),
    scales: { x: { time: true } },
    series,
    bands: AXES.map((_, k) => ({ series: [2 * k + 1, 2 * k + 2], fill: `${AXES[k][1]}33` })),
    axes: [{ values: (u, splits) => splits.map((t) => (u.scales.x.max - u.scales.x.min < 600
      ? clockSeconds(t, zone) : clock(t, zone))) }, { label: "g", size: 50 }],
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: {
      drawClear: [(u) => shade(lms)(u)],
      setSelect: [(u) => {
        if (u.select.width < 3) return;
        const a = u.posToVal(u.select.left, "x");
        const b = u.posToVal(u.select.left + u.select.width, "x");
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        load(a, b);
      }],
    },
  }, [[], [], [], [], [], [], []], container);
  plot.root.querySelector("canvas").setAttribute("role", "img");
  plot.root.querySelector("canvas").setAttribute("aria-label", "Acceleration of the leg over the window shown");

  async function load(a, b) {
    const span = Math.max(b - a, MIN_WINDOW_S);
    const mid = (a + b) / 2;
    a = Math.max(whole[0], mid - span / 2);
    b = Math.min(whole[1], a + span);
    a = Math.max(whole[0], b - span);
    view = [a, b];
    pending?.abort();
    pending = new AbortController();
    const points = Math.min(5000, Math.max(100, Math.round(plot.bbox.width / devicePixelRatio)));
    const params = { side: sideSelect.value, start: new Date(a * 1000).toISOString(),
      end: new Date(b * 1000).toISOString(), points };
    status.textContent = `Loading ${clockSeconds(a, zone)} to ${clockSeconds(b, zone)}…`;
    try {
      const answer = await api(`/nights/${night.id}/signal?${query(params)}`, { signal: pending.signal });
      plot.setData(columns(answer, a, b, points), false);
      plot.setScale("x", { min: a, max: b });
      status.textContent = `${sideSelect.value === "left" ? "Left" : "Right"} leg, ${clockSeconds(a, zone)} to ` +
        `${clockSeconds(b, zone)} (${duration(b - a)}), ${answer.time.length} buckets of ${duration((b - a) / points)}.`;
      container.dataset.window = String(b - a);
    } catch (error) {
      if (error.name !== "AbortError") status.textContent = `The signal could not be loaded: ${error.message}`;
    }
  }

  controls.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const [a, b] = view;
    const span = b - a;
    if (button.dataset.zoom) {
      const next = span * Number(button.dataset.zoom);
      load((a + b) / 2 - next / 2, (a + b) / 2 + next / 2);
    } else if (button.dataset.move) {
      const shift = span * Number(button.dataset.move);
      load(a + shift, b + shift);
    } else {
      load(...whole);
    }
  });
  sideSelect.addEventListener("change", () => {
    lms = lmsOf(sideSelect.value);
    load(...view);
  });
  new ResizeObserver(() => plot.setSize({ width: container.clientWidth, height: 280 })).observe(container);
  load(...whole);
}
