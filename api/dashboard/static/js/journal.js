// The journal: a note in two taps (a kind, then Save; text and time optional, time defaults
// to now) and the list of a night's notes.

import { api } from "./api.js";
import { clock, dayTime, unix } from "./format.js";
import { NOTE_KINDS } from "./words.js";

const $ = (id) => document.getElementById(id);

export function noteList(list, notes, zone) {
  list.replaceChildren();
  if (notes.length === 0) {
    const li = document.createElement("li");
    li.className = "small";
    li.textContent = "No notes for this night.";
    list.append(li);
  }
  for (const note of notes) {
    const li = document.createElement("li");
    li.dataset.noteId = note.note_id;
    const when = document.createElement("strong");
    when.textContent = `${clock(unix(note.start), zone)} ${NOTE_KINDS[note.kind]}`;
    li.append(when, note.text ? ` ${note.text}` : "");
    list.append(li);
  }
}

// refresh() redraws the night and gives the ids of its notes
export function addNoteForm(subject, zone, refresh) {
  const kinds = $("kinds");
  const save = $("note-save");
  const status = $("note-status");
  let kind = null;
  for (const [value, label] of Object.entries(NOTE_KINDS)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "kind";
    button.dataset.kind = value;
    button.textContent = label;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => {
      kind = value;
      for (const other of kinds.children) other.setAttribute("aria-pressed", String(other === button));
      save.disabled = false;
      save.textContent = `Save: ${label}`;
    });
    kinds.append(button);
  }
  $("note-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (kind === null) return;
    save.disabled = true;
    const local = $("note-time").value; // the browser's local time, as the parent typed it
    const body = { kind, text: $("note-text").value.trim() };
    if (local) body.time = new Date(local).toISOString();
    try {
      const note = await api(`/subjects/${encodeURIComponent(subject.id)}/journal`, { method: "POST", body });
      const shown = await refresh();
      status.textContent = shown.includes(note.id)
        ? `Saved: ${NOTE_KINDS[note.kind]} at ${clock(unix(note.time), zone)}, on the timeline above.`
        : `Saved: ${NOTE_KINDS[note.kind]} at ${dayTime(unix(note.time), zone)}; it belongs to another night.`;
      $("note-text").value = "";
      $("note-time").value = "";
      kind = null;
      for (const other of kinds.children) other.setAttribute("aria-pressed", "false");
      save.textContent = "Save note";
    } catch (error) {
      status.textContent = `Not saved: ${error.message}`;
      save.disabled = false;
    }
  });
}
