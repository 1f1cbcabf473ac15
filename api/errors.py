"""One mapping from `limbwatch.errors` to HTTP status codes, and the handlers that apply it.

FastAPI's own request validation answers 422; everything a client can cause answers 4xx with
a one-line `detail`, never 500 (`Damaged` is the store's fault, not the client's).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Match

from limbwatch.errors import (
    BadInput,
    Conflict,
    Damaged,
    LimbwatchError,
    NotFound,
    Refused,
    Unavailable,
)


class TooLarge(BadInput):
    """The request is over the service's size limit (413)."""


HTTP_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, 404),  # before BadInput: NotFound and TooLarge are BadInputs
    (TooLarge, 413),
    (BadInput, 400),
    (Conflict, 409),
    (Unavailable, 503),
    (Damaged, 500),
    (Refused, 403),
    (LimbwatchError, 400),
)


def http_status(exc: Exception) -> int:
    return next(code for kind, code in HTTP_STATUS if isinstance(exc, kind))


async def _limbwatch_error(request: Request, exc: Exception) -> JSONResponse:
    status = http_status(exc)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 with every method of the path in Allow (Starlette names only one route's)."""
    methods = sorted({
        method for route in request.app.router.routes
        if route.matches(request.scope)[0] != Match.NONE
        for method in getattr(route, "methods", None) or ()
    })
    return JSONResponse({"detail": f"{request.method} is not allowed here"}, status_code=405,
                        headers={"Allow": ", ".join(methods)})


def install(app: FastAPI) -> None:
    app.add_exception_handler(LimbwatchError, _limbwatch_error)
    app.add_exception_handler(405, _method_not_allowed)
