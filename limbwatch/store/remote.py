"""A gateway's stores on a central limbwatch server: `https://HOST[:PORT][/PREFIX]?token_file=
PATH&ca_file=PATH&timeout=S` (the token from $LIMBWATCH_GATEWAY_TOKEN or `token_file`, never
from the URL; `ca_file`: the server certificate's CA, default the system's).

A home gateway writes what it collects through the server's `/api/v1/gateway/` paths with a
token of the gateway role, which may write only the subjects the server's admin gave it
(`limbwatch token create --role gateway --subject ID ...`). `RemoteStore` is both the
gateway's sample store (`ChunkSink`) and its record store (`GatewayRecords`); the spool keeps
everything while the server cannot be reached, and hands it over once it can. Plain `http://`
is accepted only for a loopback host: a token must not cross a network in the clear.

The JSON of a chunk (`chunk_to_json`) carries its int16 counts as base64 (little-endian, n x 3,
row-major); `chunk_from_json` is the server's reading of it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import urllib3

from limbwatch.clockmodel import ClockModel
from limbwatch.errors import BadInput
from limbwatch.recording import as_side
from limbwatch.store.http_status import StoreMissing, check_status, read_token, reason
from limbwatch.store.records import DeviceEvent, SensorAssignment, SensorStatus, Subject
from limbwatch.store.samples import Chunk, StoreUnavailable

TOKEN_ENV = "LIMBWATCH_GATEWAY_TOKEN"
PREFIX = "/api/v1/gateway"
_OPTIONS = {"token_file", "ca_file", "timeout"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_COUNTS = np.dtype("<i2")


def is_remote(url: str) -> bool:
    return url.startswith(("https://", "http://"))


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    base_url: str  # scheme://host:port/prefix, no trailing slash
    ca_file: str | None
    timeout_s: float
    token: str = field(repr=False)

    @classmethod
    def from_url(cls, url: str, env: dict[str, str] | None = None,
                 need_token: bool = True) -> RemoteSettings:
        """BadInput saying what is wrong with the URL (or that no token is given, when
        `need_token`)."""
        env = dict(os.environ) if env is None else env
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise BadInput(f"store URL {url!r}: expected https://HOST[:PORT][/PREFIX]")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise BadInput(f"store URL {url!r}: use https:// (http:// only on this machine: "
                           "the token would cross the network in the clear)")
        if parts.username or parts.password:
            raise BadInput(f"store URL {url!r}: no credentials in the URL; give the token in "
                           f"${TOKEN_ENV} or token_file=PATH")
        try:
            port = parts.port
        except ValueError:
            raise BadInput(f"store URL {url!r}: the port is not a number") from None
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - _OPTIONS
        if unknown:
            raise BadInput(f"store URL {url!r}: unknown option(s) {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(_OPTIONS))})")
        one = {key: values[-1] for key, values in query.items()}
        try:
            timeout_s = float(one.get("timeout", "30"))
        except ValueError:
            raise BadInput(f"store URL {url!r}: timeout must be seconds") from None
        token = read_token(one.get("token_file"), env, TOKEN_ENV, url)
        if token is None and need_token:
            raise BadInput(f"store URL {url!r}: no token: set ${TOKEN_ENV} or token_file=PATH "
                           "(a gateway token from the server's admin)")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = host if port is None else f"{host}:{port}"
        return cls(f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}", one.get("ca_file"),
                   timeout_s, token or "")


# -- JSON of what a gateway sends -----------------------------------------------------------------

def chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    counts = np.ascontiguousarray(chunk.counts, dtype=_COUNTS)
    return {"subject": chunk.subject, "side": chunk.side, "device": chunk.device,
            "session": int(chunk.session), "seq": int(chunk.seq), "t0": float(chunk.t0),
            "dt": float(chunk.dt), "counts_per_g": int(chunk.counts_per_g),
            "ticks": chunk.ticks, "rate_hz": chunk.rate_hz,
            "counts": base64.b64encode(counts.tobytes()).decode("ascii")}


def chunk_from_json(data: Mapping[str, Any]) -> Chunk:
    """The chunk of `chunk_to_json`'s JSON; BadInput if its counts are not n x 3 int16."""
    try:
        raw = base64.b64decode(data["counts"], validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"chunk {data.get('seq')}: counts are not base64") from None
    if not raw or len(raw) % (3 * _COUNTS.itemsize):
        raise BadInput(f"chunk {data.get('seq')}: counts are not n x 3 int16 ({len(raw)} "
                       "bytes)")
    counts = np.frombuffer(raw, dtype=_COUNTS).reshape(-1, 3).astype(np.int16)
    return Chunk(subject=data["subject"], side=as_side(data["side"]), device=data["device"],
                 session=int(data["session"]), seq=int(data["seq"]), t0=float(data["t0"]),
                 dt=float(data["dt"]), counts=counts, counts_per_g=int(data["counts_per_g"]),
                 ticks=data.get("ticks"), rate_hz=data.get("rate_hz"))


def seq_ranges(seqs: Sequence[int]) -> list[list[int]]:
    """Ascending seqs as [first, last] runs: a night's 47,000 seqs are a few runs."""
    runs: list[list[int]] = []
    for q in seqs:
        if runs and q == runs[-1][1] + 1:
            runs[-1][1] = q
        else:
            runs.append([q, q])
    return runs


class RemoteStore:
    """The gateway's sample and record store on a central server (see the module docstring).
    Every call is one HTTPS request: StoreUnavailable when the server cannot be reached or
    answers 5xx (the spool retries), StoreRefused for the token (401/403), StoreMissing for an
    unknown subject, StoreRejected for data the server refuses."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self._http = urllib3.PoolManager(
            num_pools=1, maxsize=4, retries=False, ca_certs=settings.ca_file,
            timeout=urllib3.Timeout(connect=min(5.0, settings.timeout_s),
                                    read=settings.timeout_s))
        self._headers = {"Authorization": f"Bearer {settings.token}",
                         "Content-Type": "application/json"}

    # -- samples (ChunkSink) ---------------------------------------------------------------------

    def write_chunks(self, chunks: Sequence[Chunk]) -> None:
        if chunks:
            self._call("POST", "/chunks", [chunk_to_json(c) for c in chunks],
                       f"store {len(chunks)} chunks")

    def put_clock_models(self, models: Mapping[tuple[str, int], ClockModel]) -> None:
        if models:
            self._call("PUT", "/clock-models", [
                {"device": device, "session": session, "model": json.loads(model.to_json())}
                for (device, session), model in models.items()], "store clock models")

    def stored_seqs(self, device: str, session: int) -> list[int]:
        query = urlencode({"device": device, "session": session})
        answer = self._call("GET", f"/stored-seqs?{query}", None, "read the stored seqs")
        return [q for first, last in answer["ranges"] for q in range(first, last + 1)]

    # -- records (GatewayRecords) ----------------------------------------------------------------

    def subject(self, subject_id: str) -> Subject | None:
        try:
            data = self._call("GET", f"/subjects/{subject_id}", None, "read the subject")
        except StoreMissing:
            return None
        born = data["birth_date"]
        return Subject(data["id"], data["name"], None if born is None else date.fromisoformat(
            born), data["time_zone"], tuple(SensorAssignment(s["serial"], as_side(s["side"]))
                                            for s in data["sensors"]))

    def put_subject(self, subject: Subject) -> None:
        """Only which sensor is on which leg: a subject is added, named and given its time
        zone on the server (StoreMissing for one it does not know)."""
        self._call("PUT", f"/subjects/{subject.id}/sensors",
                   [{"serial": s.serial, "side": s.side} for s in subject.sensors],
                   f"assign the sensors of {subject.id!r}")

    def write_device_events(self, events: Sequence[DeviceEvent]) -> None:
        if events:
            self._call("POST", "/device-events", [
                {"subject": e.subject, "side": e.side, "time": e.time, "kind": e.kind,
                 "detail": dict(e.detail)} for e in events], f"store {len(events)} events")

    def put_status(self, statuses: Sequence[SensorStatus]) -> int:
        if not statuses:
            return 0
        answer = self._call("POST", "/status", [asdict(s) for s in statuses],
                            f"store {len(statuses)} status snapshots")
        return int(answer["last_id"])

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: object, action: str) -> Any:
        where = f"limbwatch server {self.settings.base_url}"
        try:
            response = self._http.request(
                method, f"{self.settings.base_url}{PREFIX}{path}", headers=self._headers,
                body=None if body is None else json.dumps(body).encode(), preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise StoreUnavailable(f"{where}: cannot {action}: {reason(exc)}; is the server "
                                   "up and reachable? retry later") from None
        check_status(response.status, response.data, where, action,
                     refused_hint=f"check ${TOKEN_ENV} or token_file: the token must be a "
                     "gateway token given this subject",
                     missing_hint="the server's admin adds subjects: `limbwatch subject`")
        return json.loads(response.data) if response.data else None

    def close(self) -> None:
        self._http.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
