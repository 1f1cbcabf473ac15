// What every signed-in page shares: who is looking, log-out, links that keep the child/night.

import { api } from "./api.js";

export const who = {
  role: document.body.dataset.role,
  name: document.body.dataset.name,
  ownSubject: document.body.dataset.ownSubject || null,
};

export function mayWrite(subjectId) {
  return who.role === "admin" || (who.role === "caregiver" && subjectId === who.ownSubject);
}

export function keepQuery(params) {
  const search = new URLSearchParams(params).toString();
  for (const link of document.querySelectorAll("a[data-keep-query]")) {
    link.search = search;
  }
}

export function showError(error) {
  const main = document.getElementById("main");
  const box = document.createElement("p");
  box.className = "error";
  box.setAttribute("role", "alert");
  box.textContent = `Something went wrong: ${error.message}`;
  main.prepend(box);
}

document.getElementById("logout")?.addEventListener("click", async () => {
  await api("/session", { method: "DELETE" });
  location.assign("/login");
});
