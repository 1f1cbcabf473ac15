"""The dashboard's HTML pages. A page needs the session cookie of `POST /api/v1/session`:
without a valid one it answers 303 to `/login?next=...`. A page carries who is looking (name,
role, own subject) so that its script shows only what the token may do; the data itself comes
from the API, which checks every request again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import COOKIE, Ctx, Principal, check_token

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# scripts, styles, data and connections from this origin only; nothing inline, no frames
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGES = {"/": ("morning", "Morning"), "/live": ("live", "Live"),
         "/specialist": ("specialist", "Specialist")}


def viewer(ctx: Ctx, request: Request) -> Principal | None:
    """The principal of the request's session cookie, None without a valid one."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return check_token(ctx, request, token)
    except HTTPException as exc:
        if exc.status_code == 401:
            return None
        raise


def _page(ctx: Ctx, request: Request) -> Response:
    who = viewer(ctx, request)
    path = request.url.path
    if who is None:
        target = path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303,
                                headers=HEADERS)
    page, title = PAGES[path]
    return templates.TemplateResponse(request, f"{page}.html", {
        "who": who, "page": page, "title": title, "pages": PAGES}, headers=HEADERS)


@router.get("/", response_class=HTMLResponse)
def morning(ctx: Ctx, request: Request) -> Response:
    """The night in plain words: summary, flags, timeline, journal, IMI histogram, trend."""
    return _page(ctx, request)


@router.get("/live", response_class=HTMLResponse)
def live(ctx: Ctx, request: Request) -> Response:
    """Each sensor's state and the device alerts, from the event stream."""
    return _page(ctx, request)


@router.get("/specialist", response_class=HTMLResponse)
def specialist(ctx: Ctx, request: Request) -> Response:
    """Every figure, per-leg tables, the signal, nights side by side, sharing."""
    return _page(ctx, request)


@router.get("/login", response_class=HTMLResponse)
def login(request: Request,
          next: Annotated[str, Query(max_length=2000)] = "/") -> Response:
    """The token form; after log-in the browser goes to `next` (a path of this site only)."""
    safe = next if next.startswith("/") and not next.startswith("//") and "\\" not in next \
        else "/"
    return templates.TemplateResponse(request, "login.html", {
        "who": None, "page": "login", "title": "Log in", "pages": PAGES, "next": safe},
        headers=HEADERS)
