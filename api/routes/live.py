"""`GET /api/v1/live`: sensor status and device alerts as server-sent events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.auth import Ctx, Who
from api.live import stream

router = APIRouter(prefix="/api/v1", tags=["live"])


@router.get("/live", response_class=StreamingResponse, responses={200: {
    "description": "text/event-stream: `event: status` per snapshot, `event: alert` per alert; "
                   "monotonic `id:` (resume with Last-Event-ID)",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def live(ctx: Ctx, who: Who,
               last_event_id: Annotated[int | None, Header(ge=0, le=2**62)] = None,
               once: Annotated[bool, Query(description="send what is pending, then close")]
               = False) -> StreamingResponse:
    """Status of the sensors of the subjects this token may see, and alerts about them."""
    return StreamingResponse(
        stream(ctx, who, last_event_id, once or ctx.settings.live_once),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
