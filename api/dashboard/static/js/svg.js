// Small helpers for the plain-SVG charts (the timeline, the histogram, the trend).

const NS = "http://www.w3.org/2000/svg";

export function el(name, attrs = {}, parent = null, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  if (parent) parent.append(node);
  return node;
}

// an SVG picture with a text alternative (role img, named by its <title>)
export function picture(width, height, label) {
  const svg = el("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  el("title", {}, svg, label);
  return svg;
}

export function tip(node, text) {
  el("title", {}, node, text);
  return node;
}

// draw(container width) into the container now and whenever its width changes; a second
// call for the same container replaces the drawing function
const drawers = new WeakMap();
const watcher = new ResizeObserver((entries) => {
  for (const entry of entries) redraw(entry.target, false);
});

function redraw(container, force) {
  const state = drawers.get(container);
  const width = Math.floor(container.clientWidth);
  if (width === 0 || (!force && width === state.width)) return;
  state.width = width;
  container.replaceChildren(state.draw(width));
}

export function responsive(container, draw) {
  const known = drawers.has(container);
  drawers.set(container, { draw, width: -1 });
  if (!known) watcher.observe(container);
  redraw(container, true);
}

export const COLOURS = {
  sleep: "#2f5d9e",
  wake: "#f2b134",
  nodata: "#d0d0d0",
  lm: "#5b7083",
  periodic: "#6a1b9a",
  series: "#eadcf5",
  tremor: "#c62828",
  jerk: "#3d3d3d",
  note: "#00695c",
  ink: "#222222",
  grid: "#d8d8d8",
  band: "#dce8f5",
  median: "#1f4f8a",
  highlight: "#c2410c",
};
