"""Operational signals of the HTTP service: request latency by route template and status, and
`GET /metrics` (Prometheus text format) over the process's default registry, so that the
analysis service's figures (`worker.service`: analysis duration, failures, nights analysed) are
there too when it runs inside `limbwatch serve`.

Latency is measured by an ASGI middleware from the request's arrival to the end of its response
body (so an event stream's observation is its whole length: its route, `/api/v1/live`, has its
own label). Routes are labelled by their template (`/api/v1/nights/{night_id}/report`), never
by the raw path, and requests that match no route share one label, so that the number of series
stays bounded whatever clients send.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"

HTTP_LATENCY = Histogram(
    "limbwatch_http_request_duration_seconds",
    "HTTP requests: time from arrival to the end of the response, by route template, method "
    "and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics() -> Response:
    """Every metric of this process, in the Prometheus text format (no authentication: bind
    the API to a trusted network or proxy it)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class LatencyMiddleware:
    """Observes `HTTP_LATENCY` for every HTTP request (a handler's exception counts as 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                _series(route_template(scope), scope["method"], status).observe(
                    time.perf_counter() - start)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                observe()

        try:
            await self.app(scope, receive, sending)
        finally:
            observe()  # an exception, or a client gone before the end of the body


_SERIES: dict[tuple[str, str, int], Any] = {}


def _series(route: str, method: str, status: int) -> Any:
    """`HTTP_LATENCY.labels(...)`, looked up once per series (it costs some microseconds)."""
    key = (route, method, status)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = HTTP_LATENCY.labels(route, method, str(status))
    return found


def route_template(scope: dict[str, Any] | Scope) -> str:
    """The path template of the route that served the request, or UNMATCHED."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
