"""Health and the browser's cookie session (the pages are `api.dashboard`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.auth import COOKIE, Ctx, Who, check_token
from api.models import Health, Problem, SessionIn, SessionOut
from limbwatch.errors import LimbwatchError

router = APIRouter()
PROBE_ID = "limbwatch-healthz"  # a subject id looked up by /healthz (it need not exist)
SESSION_MAX_AGE_S = 7 * 86400


@router.get("/healthz", response_model=Health, responses={503: {"model": Problem}},
            tags=["service"])
def healthz(ctx: Ctx) -> JSONResponse:
    """`{"status": "ok", "checks": {...}}` while the store can be used, else 503 with the same
    checks and `detail`. No token needed (container health checks, load balancers). Each check
    reads the store once: `records` looks a subject up, `samples` the extent of one."""
    checks: dict[str, str] = {}
    probes = (("records", lambda: ctx.records.subject(PROBE_ID)),
              ("samples", lambda: ctx.samples.extent(PROBE_ID)))
    for name, probe in probes:
        try:
            probe()
        except LimbwatchError as exc:  # Unavailable, Damaged, a missing bucket, ...
            checks[name] = str(exc)
        else:
            checks[name] = "ok"
    failed = [f"{name}: {why}" for name, why in checks.items() if why != "ok"]
    if failed:
        return JSONResponse({"detail": "; ".join(failed), "status": "unavailable",
                             "checks": checks}, status_code=503, headers={"Retry-After": "5"})
    return JSONResponse({"status": "ok", "checks": checks})


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
