// The live view: each sensor's state and the alerts, from the server-sent events of
// /api/v1/live. EventSource sends the cookie, and after a drop (a phone asleep) reconnects by
// itself with Last-Event-ID, so the stream resumes where it stopped. A new stream starts with
// each sensor's newest snapshot however old; one not heard from for long comes with its lost
// alert, and its card then says when it was last seen, not what that old snapshot said.

import { api } from "./api.js";
import { clock, clockSeconds, dayTime, duration, unix } from "./format.js";
import { showError } from "./session.js";
import { deviceAlert } from "./words.js";

const $ = (id) => document.getElementById(id);
const FLOWING_S = 10; // a packet this recent: data is flowing
const DAY_TOO_S = 12 * 3600; // a time this long before the one it is read against: with its day
const TIERS = { device: "Sensor: about the device, not your child", child: "About your child" };
const cards = new Map(); // serial -> {card, status}
const open = new Map(); // serial -> alert items not yet resolved
let subjects = new Map();

function row(list, name, value, state = "") {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (state) dd.className = state;
  list.append(dt, dd);
}

function ago(t, ref) {
  return t === null ? null : `${clockSeconds(unix(t), zoneOf(ref))}, ${duration(Math.max(0, unix(ref.time) - unix(t)))} before the update`;
}

// Unix time t in the child's zone, with the day when it is long before `ref` (Unix s)
function when(t, ref, zone, seconds = true) {
  if (ref - t >= DAY_TOO_S) return dayTime(t, zone);
  return seconds ? clockSeconds(t, zone) : clock(t, zone);
}

// the serial's open lost alert (its list item), if any
function lostAlert(serial) {
  return (open.get(serial) ?? []).find((item) => item.dataset.alert === "lost") ?? null;
}

function zoneOf(status) {
  return subjects.get(status.subject_id)?.time_zone ?? "UTC";
}

function card(serial, side, subjectId) {
  if (cards.has(serial)) return cards.get(serial).card;
  const node = document.createElement("article");
  node.className = "sensor";
  node.dataset.serial = serial;
  const h = document.createElement("h3");
  const child = subjects.get(subjectId)?.name ?? subjectId;
  h.textContent = `${side === "left" ? "Left" : "Right"} ankle · ${child}`;
  const small = document.createElement("p");
  small.className = "small";
  small.textContent = serial;
  const body = document.createElement("p");
  body.className = "body";
  body.textContent = "No report yet.";
  node.append(h, small, body);
  $("sensors").append(node);
  cards.set(serial, { card: node, status: null });
  return node;
}

const flowingIn = (s) => s.last_packet !== null && unix(s.time) - unix(s.last_packet) <= FLOWING_S;

// the card of the serial's newest status; an open lost alert outweighs what that status says
function render(serial) {
  const { card: node, status: s } = cards.get(serial);
  if (s === null) return;
  const lost = lostAlert(serial);
  const connected = s.connected && lost === null;
  const flowing = lost === null && flowingIn(s);
  const zone = zoneOf(s);
  const judged = Math.max(unix(s.time), lost === null ? 0 : unix(lost.dataset.time));
  node.dataset.connected = String(connected);
  node.dataset.onAnkle = String(s.on_ankle);
  node.classList.toggle("away", !connected);
  node.classList.toggle("warn", s.on_ankle === false || (s.battery_pct ?? 100) < 20);
  const list = document.createElement("dl");
  list.className = "body";
  const since = lost === null ? null : unix(lost.dataset.since);
  row(list, "Connection", connected ? "Connected" : lost !== null
    ? `Away: last seen ${when(since, judged, zone, false)}, ${duration(judged - since)} ago`
    : "Away: not connected", connected ? "ok" : "bad");
  row(list, "Battery", s.battery_pct === null ? "Not known" : `${Math.round(s.battery_pct)} %`,
    (s.battery_pct ?? 100) < 20 ? "bad" : "ok");
  row(list, "Data", flowing ? "Flowing" : s.last_packet === null ? "None yet" : `Stopped (last ${ago(s.last_packet, s)})`,
    flowing ? "ok" : "bad");
  row(list, "Ankle", s.on_ankle === null ? "Not known yet" : s.on_ankle ? "On the ankle" : "Off the ankle",
    s.on_ankle === false ? "bad" : "ok");
  row(list, "Last movement", s.last_movement === null ? "None yet" : ago(s.last_movement, s));
  row(list, "Updated", when(unix(s.time), judged, zone));
  node.querySelector(".body").replaceWith(list);
  $("no-sensors").hidden = true;
}

function showStatus(s) {
  card(s.serial, s.side, s.subject_id);
  cards.get(s.serial).status = s;
  for (const item of open.get(s.serial) ?? []) {
    const over = item.dataset.alert === "lost" ? s.connected && flowingIn(s)
      : item.dataset.alert === "off_ankle" ? s.on_ankle === true : false;
    if (over) {
      item.classList.add("resolved");
      item.querySelector(".when").textContent += ` · resolved ${clockSeconds(unix(s.time), zoneOf(s))}`;
    }
  }
  open.set(s.serial, (open.get(s.serial) ?? []).filter((item) => !item.classList.contains("resolved")));
  render(s.serial);
}

function showAlert(a) {
  const item = document.createElement("li");
  item.className = `alert alert-${a.tier}`;
  item.dataset.alert = a.alert;
  item.dataset.serial = a.serial;
  item.dataset.since = a.since;
  item.dataset.time = a.time;
  const tier = document.createElement("p");
  tier.className = "tier";
  tier.textContent = TIERS[a.tier] ?? a.tier;
  const message = document.createElement("p");
  const since = when(unix(a.since), unix(a.time), zoneOf(a), false);
  message.textContent = a.tier === "device"
    ? deviceAlert(a, since, cards.get(a.serial)?.status?.battery_pct ?? null) : a.message;
  const stamp = document.createElement("p");
  stamp.className = "when small";
  stamp.textContent = `Since ${when(unix(a.since), unix(a.time), zoneOf(a))}`;
  item.append(tier, message, stamp);
  $("alerts").prepend(item);
  $("no-alerts").hidden = true;
  open.set(a.serial, [...(open.get(a.serial) ?? []), item]);
  if (cards.has(a.serial)) render(a.serial);
}

function connect() {
  const state = $("connection");
  const source = new EventSource("/api/v1/live");
  source.addEventListener("open", () => { state.textContent = "Live: connected."; });
  source.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  source.addEventListener("alert", (e) => showAlert(JSON.parse(e.data)));
  source.addEventListener("error", async () => {
    if (source.readyState === EventSource.CONNECTING) {
      state.textContent = "Connection lost: reconnecting (it picks up where it left off)…";
      return;
    }
    await api("/subjects"); // not logged in any more: this goes to the log-in page
    state.textContent = "The live stream stopped. Reload the page to start it again.";
  });
}

async function main() {
  const list = await api("/subjects");
  subjects = new Map(list.map((s) => [s.id, s]));
  for (const s of list) for (const sensor of s.sensors) card(sensor.serial, sensor.side, s.id);
  connect();
  document.body.dataset.ready = "1";
}

main().catch(showError);
