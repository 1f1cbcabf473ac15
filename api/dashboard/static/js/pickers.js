// The child and night pickers of the morning and specialist views: which subject and night the
// page shows (from ?subject=&night=, else the token's own child and its latest analysed night).

import { api, query } from "./api.js";
import { dateLong } from "./format.js";
import { keepQuery, who } from "./session.js";

const STATUS_WORDS = {
  recording: "still recording",
  waiting: "waiting to be analysed",
  analysing: "being analysed",
  failed: "could not be analysed",
};

function option(select, value, label, selected) {
  const node = new Option(label, value, selected, selected);
  select.append(node);
}

function go(params) {
  location.assign(`${location.pathname}?${query(params)}`);
}

// {subject, subjects, nights (newest first), night (a summary, or null)}
export async function pick() {
  const params = new URLSearchParams(location.search);
  const subjects = await api("/subjects");
  if (subjects.length === 0) return { subject: null, subjects, nights: [], night: null };
  const wanted = params.get("subject") ?? who.ownSubject;
  const subject = subjects.find((s) => s.id === wanted) ?? subjects[0];
  const { nights } = await api(`/subjects/${encodeURIComponent(subject.id)}/nights?limit=60`);
  const wantedNight = Number(params.get("night"));
  const night = nights.find((n) => n.id === wantedNight) ?? nights.find((n) => n.status === "ready") ?? null;

  const subjectSelect = document.getElementById("subject");
  if (subjects.length > 1 || who.role !== "caregiver") {
    document.getElementById("subject-field").hidden = false;
    for (const s of subjects) option(subjectSelect, s.id, s.name, s.id === subject.id);
    subjectSelect.addEventListener("change", () => go({ subject: subjectSelect.value }));
  }
  const nightSelect = document.getElementById("night");
  for (const n of nights) {
    const state = n.status === "ready" ? "" : ` (${STATUS_WORDS[n.status]})`;
    option(nightSelect, n.id, `${dateLong(n.date)}${state}`, night !== null && n.id === night.id);
  }
  nightSelect.addEventListener("change", () => go({ subject: subject.id, night: nightSelect.value }));
  keepQuery(night ? { subject: subject.id, night: night.id } : { subject: subject.id });
  return { subject, subjects, nights, night };
}

// a line about a newer night that has no report yet, or ""
export function pendingLine(nights, night) {
  const newer = nights.find((n) => n.status !== "ready");
  if (!newer || (night && newer.date < night.date)) return "";
  return `The night of ${dateLong(newer.date)} is ${STATUS_WORDS[newer.status]}; this is the latest finished night.`;
}
