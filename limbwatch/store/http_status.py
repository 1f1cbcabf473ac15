"""What an HTTP store's answers and failures mean, for every store reached over HTTP (InfluxDB,
a central limbwatch server): `StoreUnavailable` (retry later), `StoreRejected` (bad data, do
not retry), `StoreRefused` (the token), `StoreMissing` (what was asked for does not exist)."""

from __future__ import annotations

from pathlib import Path

import urllib3

from limbwatch.errors import BadInput, Refused
from limbwatch.store.samples import StoreUnavailable


class StoreRejected(BadInput):
    """The server refused these points as bad data (HTTP 400: a type conflict, a time outside
    the retention policy): sending them again cannot help."""


class StoreRefused(Refused):
    """The server refused the token (HTTP 401/403)."""


class StoreMissing(BadInput):
    """The database, bucket or subject does not exist on the server."""


def check_status(status: int, body: bytes, where: str, action: str, *, refused_hint: str,
                 missing_hint: str) -> None:
    """Nothing for 2xx; else the error that says what the status means, with the hint that
    says what to do (`refused_hint` for 401/403, `missing_hint` for 404)."""
    if 200 <= status < 300:
        return
    text = body.decode(errors="replace").strip().replace("\n", " ")[:300]
    message = f"{where}: cannot {action}: HTTP {status}: {text}"
    if status in (401, 403):
        raise StoreRefused(f"{message} ({refused_hint})")
    if status == 404 or "not found" in text:
        raise StoreMissing(f"{message} ({missing_hint})")
    if status in (400, 413, 422):
        raise StoreRejected(f"{message} (the server refused the data)")
    raise StoreUnavailable(f"{message}; retry later")


def reason(exc: urllib3.exceptions.HTTPError) -> str:
    """A short reason for a failed request (connection refused, timed out...)."""
    why = getattr(exc, "reason", None) or exc
    return str(why).split(": ", 1)[-1][:200]


def read_token(token_file: str | None, env: dict[str, str], env_name: str, url: str
               ) -> str | None:
    """The token in `token_file` if given, else in $`env_name`; BadInput if the file cannot
    be read."""
    if token_file:
        try:
            return Path(token_file).read_text().strip() or None
        except OSError as exc:
            raise BadInput(f"store URL {url!r}: cannot read token_file: {exc.strerror}") from None
    return env.get(env_name) or None
