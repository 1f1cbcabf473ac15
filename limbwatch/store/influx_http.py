"""Talking to an InfluxDB server: where it is (`InfluxSettings`, from a store URL), how points
get there (v1 `/write`, or `/api/v2/write` through `influxdb-client`), InfluxQL reads through
`/query` (answered by 1.x, by 2.x through its v1 compatibility API, and by 3.x), and what each
failure means (`StoreUnavailable`: retry later; `StoreRejected`: bad data, do not retry;
`StoreRefused`: the token; `StoreMissing`: run `limbwatch store init`).

Both transports send the same pre-serialised line protocol (`influx_lines`), synchronously:
never `influxdb-client`'s background batching, which loses data on errors
(`../shared/notes/storage.md`). Neither retries by itself; the gateway's spool does.
"""

from __future__ import annotations

import base64
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, cast
from urllib.parse import parse_qs, urlencode, urlsplit

import urllib3

from limbwatch.errors import BadInput
from limbwatch.store import http_status
from limbwatch.store.http_status import reason
from limbwatch.store.influx_lines import PRECISION
from limbwatch.store.samples import StoreUnavailable

Api = Literal["v1", "v2"]
TOKEN_ENV = "LIMBWATCH_INFLUX_TOKEN"
_SCHEMES = {"influxdb": "http", "influxdbs": "https"}
_OPTIONS = {"api", "org", "records", "token_file", "derived", "timeout", "gzip"}


@dataclass(frozen=True, slots=True)
class InfluxSettings:
    """An InfluxDB sample store, from `influxdb[s]://HOST[:PORT]/BUCKET?api=v1|v2&org=ORG&
    records=PATH[&token_file=PATH][&derived=BUCKET][&timeout=S][&gzip=0|1]`.

    `bucket` holds the raw samples (a 1.x database or a 2.x/3.x bucket), `derived` the clock
    models and per-night figures (default `BUCKET_derived`), `records` the SQLite record store.
    The token comes from $LIMBWATCH_INFLUX_TOKEN or `token_file`, never from the URL."""

    base_url: str  # http(s)://host:port
    bucket: str
    api: Api
    org: str
    records: Path
    derived: str
    timeout_s: float
    gzip: bool
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str, env: dict[str, str] | None = None) -> InfluxSettings:
        env = dict(os.environ) if env is None else env
        parts = urlsplit(url)
        scheme = _SCHEMES.get(parts.scheme)
        if scheme is None:
            raise BadInput(f"store URL {url!r}: not an influxdb:// or influxdbs:// URL")
        try:
            port = parts.port or 8086
        except ValueError:
            raise BadInput(f"store URL {url!r}: the port is not a number") from None
        if not parts.hostname:
            raise BadInput(f"store URL {url!r} names no server (influxdb://HOST:PORT/BUCKET)")
        if parts.username or parts.password:
            raise BadInput(f"store URL {url!r}: no credentials in the URL; give the token in "
                           f"${TOKEN_ENV} or token_file=PATH")
        bucket = parts.path.strip("/")
        if not bucket or "/" in bucket:
            raise BadInput(f"store URL {url!r} names no bucket (influxdb://HOST:PORT/BUCKET)")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - _OPTIONS
        if unknown:
            raise BadInput(f"store URL {url!r}: unknown option(s) {', '.join(sorted(unknown))} "
                           f"(known: {', '.join(sorted(_OPTIONS))})")
        one = {key: values[-1] for key, values in query.items()}
        api = one.get("api", "v2")
        if api not in ("v1", "v2"):
            raise BadInput(f"store URL {url!r}: api must be v1 (InfluxDB 1.x /write) or v2 "
                           f"(/api/v2/write: 1.8+, 2.x, 3.x), not {api!r}")
        if api == "v2" and not one.get("org"):
            raise BadInput(f"store URL {url!r}: api=v2 needs org=ORG")
        if not one.get("records"):
            raise BadInput(f"store URL {url!r}: needs records=PATH (the SQLite file that keeps "
                           "subjects, nights and reports beside InfluxDB)")
        try:
            timeout_s = float(one.get("timeout", "30"))
        except ValueError:
            raise BadInput(f"store URL {url!r}: timeout must be seconds") from None
        return cls(
            base_url=f"{scheme}://{parts.hostname}:{port}", bucket=bucket,
            api="v1" if api == "v1" else "v2", org=one.get("org", ""),
            records=Path(one["records"]), derived=one.get("derived") or f"{bucket}_derived",
            timeout_s=timeout_s, gzip=one.get("gzip", "1") != "0",
            token=http_status.read_token(one.get("token_file"), env, TOKEN_ENV, url),
        )


class Transport(Protocol):
    def write(self, db: str, body: bytes) -> None:
        """Write line protocol (`PRECISION` timestamps) into a database or bucket."""

    def query(self, db: str, q: str) -> bytes:
        """An InfluxQL statement; the answer as CSV."""

    def close(self) -> None: ...


class HttpV1:
    """`/write`, `/query` and `/ping` of the v1 HTTP API (urllib3), for every server version.

    A token `user:password` is sent as HTTP basic auth (1.x users; 2.x takes any user name with
    its token as the password), any other as `Authorization: Token ...` (2.x, 3.x)."""

    def __init__(self, settings: InfluxSettings) -> None:
        self.settings = settings
        self._http = urllib3.PoolManager(
            num_pools=2, maxsize=4, retries=False,
            timeout=urllib3.Timeout(connect=min(5.0, settings.timeout_s),
                                    read=settings.timeout_s))
        self._headers = {} if settings.token is None else {"Authorization": _auth(settings.token)}

    def write(self, db: str, body: bytes) -> None:
        headers = {**self._headers, "Content-Type": "text/plain; charset=utf-8"}
        if self.settings.gzip:
            body = gzip.compress(body, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = urlencode({"db": db, "precision": PRECISION})
        self._request("POST", f"/write?{params}", body, headers, f"write to {db}")

    def query(self, db: str, q: str) -> bytes:
        headers = {**self._headers, "Accept": "application/csv",
                   "Content-Type": "application/x-www-form-urlencoded"}
        body = urlencode({"db": db, "q": q, "epoch": PRECISION}).encode()
        return self._request("POST", "/query", body, headers, f"query {db}")

    def ping(self) -> None:
        self._request("GET", "/ping", None, self._headers, "reach the server")

    def _request(self, method: str, path: str, body: bytes | None, headers: dict[str, str],
                 action: str) -> bytes:
        where = f"InfluxDB {self.settings.base_url}"
        try:
            response = self._http.request(method, self.settings.base_url + path, body=body,
                                          headers=headers, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            raise StoreUnavailable(f"{where}: cannot {action}: {reason(exc)}; is the server "
                                   "running? retry later") from None
        check_status(response.status, response.data, where, action)
        return bytes(response.data)

    def close(self) -> None:
        self._http.clear()


class ClientV2:
    """Writes through `influxdb-client`'s synchronous write API (`/api/v2/write`: 1.8+, 2.x,
    3.x); queries through the v1 compatibility `/query` (`HttpV1`)."""

    def __init__(self, settings: InfluxSettings) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.settings = settings
        self._client = InfluxDBClient(url=settings.base_url, token=settings.token or "",
                                      org=settings.org, timeout=int(settings.timeout_s * 1000),
                                      retries=False, enable_gzip=False)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)
        self._v1 = HttpV1(settings)

    def write(self, db: str, body: bytes) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException

        where = f"InfluxDB {self.settings.base_url}"
        try:
            self._write.write(bucket=db, org=self.settings.org, record=body,
                              write_precision=cast(WritePrecision, WritePrecision.US))
        except ApiException as exc:
            check_status(int(exc.status or 0), (exc.body or "").encode() if isinstance(
                exc.body, str) else bytes(exc.body or b""), where, f"write to {db}")
            raise StoreUnavailable(f"{where}: cannot write to {db}: {exc.reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise StoreUnavailable(f"{where}: cannot write to {db}: {reason(exc)}; is the "
                                   "server running? retry later") from None

    def query(self, db: str, q: str) -> bytes:
        return self._v1.query(db, q)

    def ping(self) -> None:
        self._v1.ping()

    def close(self) -> None:
        self._client.close()
        self._v1.close()


def check_status(status: int, body: bytes, where: str, action: str) -> None:
    """Nothing for 2xx; else the error that says what the status means (`http_status`)."""
    http_status.check_status(
        status, body, where, action,
        refused_hint=f"the token is wrong or may not do this: check ${TOKEN_ENV} or token_file",
        missing_hint="create it with `limbwatch store init --store URL`")


def _auth(token: str) -> str:
    if ":" in token:
        return "Basic " + base64.b64encode(token.encode()).decode()
    return f"Token {token}"


def transport(settings: InfluxSettings) -> HttpV1 | ClientV2:
    return HttpV1(settings) if settings.api == "v1" else ClientV2(settings)
