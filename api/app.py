"""The HTTP service: `create_app(samples, records)` builds the FastAPI application on stores."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from api import dashboard, errors, metrics
from api.auth import FailureLimit
from api.context import Context, Settings
from api.models import Problem
from api.routes import exports, gateway, imports, live, nights, session, subjects
from limbwatch.store.records import RecordStore
from limbwatch.store.samples import SampleStore

DESCRIPTION = """Night reports, events, signals, trends, the caregiver journal and live sensor
status of limbwatch (contract: night-report.md section 4). Every `/api/v1/` path needs
`Authorization: Bearer TOKEN` or the session cookie of `POST /api/v1/session`."""


# what any route may answer besides its own success (every body a Problem)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": what} for code, what in (
        (400, "a bad parameter or file"), (401, "no valid token"),
        (403, "a subject the token may not see or change"), (404, "no such id"),
        (409, "not in this state"), (413, "over the size limit"),
        (429, "too many bad tokens from this address"), (503, "the store cannot be used now"))
}


class RefuseLarge:
    """413 for a request whose Content-Length is over `limit` bytes, before it is read. A plain
    ASGI middleware: Starlette's `BaseHTTPMiddleware` costs about 0.4 ms on every request."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit:
                response = JSONResponse(
                    {"detail": f"the request is over the {self.limit} byte limit"},
                    status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(samples: SampleStore, records: RecordStore, *,
               now: Callable[[], float] = time.time, settings: Settings | None = None) -> FastAPI:
    """The application on these stores; `now` is the store's clock (Unix s)."""
    settings = settings or Settings()
    app = FastAPI(title="limbwatch", version="1", description=DESCRIPTION)
    app.state.ctx = Context(samples, records, now, settings)
    app.state.failures = FailureLimit(settings.auth_failures_per_min)
    errors.install(app)
    limit = 2 * settings.max_upload_bytes + 2**20  # two files and the form around them

    for module in (session, subjects, nights, live, imports, exports, gateway):
        app.include_router(module.router, responses=PROBLEMS)
    app.include_router(metrics.router)  # GET /metrics, outside the OpenAPI document
    dashboard.install(app)  # the pages, at / and beside the API
    app.add_middleware(RefuseLarge, limit=limit)
    app.add_middleware(metrics.LatencyMiddleware)  # outermost of ours: sees every answer
    return app
