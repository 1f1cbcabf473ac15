"""Cursor paging of the list answers sorted by time (a night's events, the journal).

The answer stays the JSON list of the contract; while there is more, a `Link: <URL>;
rel="next"` header (RFC 8288) gives the next page's address, its `cursor` naming where the
page ended: the time of its last item and how many items at exactly that time have been
given, so that items sharing a time are neither repeated nor skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import TypeVar

from fastapi import Request, Response

from limbwatch.errors import BadInput

T = TypeVar("T")
After = tuple[float, int]  # (time of the last item given, items given at that time)


def encode(after: After) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(after)).encode()).decode()


def decode(text: str | None) -> After | None:
    """The cursor's place, None without one; BadInput for one this service did not give."""
    if text is None:
        return None
    try:
        t, n = json.loads(base64.urlsafe_b64decode(text.encode()))
        if not (isinstance(t, float | int) and isinstance(n, int) and math.isfinite(t)
                and 0 < n < 2**31):
            raise ValueError(text)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadInput("cursor is not one this service gave out; start again without it"
                       ) from None
    return float(t), n


def page(items: Sequence[T], time_of: Callable[[T], float], limit: int | None,
         after: After | None) -> tuple[list[T], After | None]:
    """The items after `after` (all when None), at most `limit`, of `items` sorted by
    `time_of`; and the place to go on from, None when nothing is left."""
    times = [time_of(item) for item in items]
    first = 0
    if after is not None:
        t, given = after
        first = min(bisect_left(times, t) + given, bisect_right(times, t))
    last = len(items) if limit is None else min(len(items), first + limit)
    if last == len(items):
        return list(items[first:last]), None
    t = times[last - 1]
    return list(items[first:last]), (t, last - bisect_left(times, t))


def link_next(request: Request, response: Response, after: After | None) -> Response:
    """`response` with the next page's Link header when there is one."""
    if after is not None:
        url = request.url.include_query_params(cursor=encode(after))
        response.headers["Link"] = f'<{url}>; rel="next"'
    return response
