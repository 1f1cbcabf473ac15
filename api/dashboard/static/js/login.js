// The log-in form: trade the token for the HttpOnly session cookie, then go where asked.

const form = document.getElementById("login");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const answer = await fetch("/api/v1/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("token").value.trim() }),
  });
  if (answer.ok) {
    location.assign(form.dataset.next);
    return;
  }
  const retry = answer.headers.get("Retry-After");
  error.textContent = answer.status === 401 ? "That token is not valid. Check it and try again."
    : answer.status === 429 ? `Too many tries. Wait ${retry ?? "a minute"} seconds and try again.`
    : `Could not log in (${answer.status}).`;
});
