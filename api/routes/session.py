"""Health and the browser's cookie session (the pages are `api.dashboard`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.auth import COOKIE, Ctx, Who, check_token
from api.models import Health, Problem, SessionIn, SessionOut
from limbwatch.errors import Unavailable

router = APIRouter()
SESSION_MAX_AGE_S = 7 * 86400


@router.get("/healthz", response_model=Health, responses={503: {"model": Problem}},
            tags=["service"])
def healthz(ctx: Ctx) -> JSONResponse:
    """`{"status": "ok"}` while the store can be used, else 503."""
    try:
        ctx.records.subjects()
    except Unavailable as exc:
        return JSONResponse({"detail": str(exc)}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.post("/api/v1/session", response_model=SessionOut, tags=["session"])
def log_in(ctx: Ctx, request: Request, body: SessionIn, response: Response) -> SessionOut:
    """Trade a token for an HttpOnly, SameSite=Strict session cookie (for the dashboard and
    EventSource, which cannot send headers). Bad tokens count toward the per-address limit."""
    who = check_token(ctx, request, body.token)
    response.set_cookie(COOKIE, body.token, max_age=SESSION_MAX_AGE_S, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return SessionOut(name=who.name, role=who.role, subject_id=who.subject_id)


@router.delete("/api/v1/session", status_code=204, tags=["session"])
def log_out(who: Who) -> Response:
    """End the browser session (the token itself stays valid)."""
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
