"""The dashboard: the pages people read (log-in, morning view, live view, specialist view),
served by the API's own app from `templates/` and `static/` (vendored, pinned, with licences;
no CDN, no build step). The pages are shells; their plain JS modules read `/api/v1/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from api.dashboard.pages import router

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages (they take `/`) and `/static` (gzipped) to the app."""
    app.include_router(router)
    app.mount("/static", GZipMiddleware(StaticFiles(directory=STATIC), minimum_size=500),
              name="static")
