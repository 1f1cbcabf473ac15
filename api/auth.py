"""Bearer tokens, the browser's cookie session, roles and the failed-log-in limit.

A token is `secrets.token_urlsafe(32)`; the store keeps only its SHA-256, so a request costs one
indexed look-up, and the digest is compared in constant time. Roles:
- caregiver: their own subject: read, journal, night-ended, reanalyze, shares, imports;
- clinician: read-only on the subjects shared with them, except that they may import a night
  from CSV files into one (a specialist's recordings from elsewhere);
- gateway: a home gateway's: writes samples, device events and live status of the subjects
  given it (its shares, `limbwatch token create --role gateway --subject ID ...`), reads
  nothing else;
- admin: everything.
A subject the token may not see is 403; a night of one is 404 (night ids are sequential, so a
403 would tell that the night exists).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from api.context import Context, context
from limbwatch.errors import NotFound, Refused
from limbwatch.store.records import NightRecord, Role, Subject, Token

COOKIE = "limbwatch_session"
WINDOW_S = 60.0
Need = Literal["read", "import", "write"]  # what a route does with a subject

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer TOKEN")
_cookie = APIKeyCookie(name=COOKIE, auto_error=False,
                       description="the dashboard's session (POST /api/v1/session)")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(name: str, role: Role, subject_id: str | None, now: float) -> tuple[str, Token]:
    """A new secret and the record to store for it (which holds only its digest)."""
    secret = new_token()
    return secret, Token(name, role, subject_id, digest(secret), now, None)


class FailureLimit:
    """At most `limit` bad credentials per client address per minute; then 429 for a while."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        seen = self._failures.setdefault(address, deque())
        while seen and seen[0] <= now - WINDOW_S:
            seen.popleft()
        return seen

    def check(self, address: str, now: float) -> None:
        with self._lock:
            seen = self._recent(address, now)
            if len(seen) >= self.limit:
                retry = max(1, int(seen[0] + WINDOW_S - now) + 1)
                raise HTTPException(429, f"too many bad tokens from {address}; retry in "
                                    f"{retry} s", headers={"Retry-After": str(retry)})

    def failed(self, address: str, now: float) -> None:
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._failures) > 10_000:  # forget quiet addresses
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]


@dataclass(frozen=True)
class Principal:
    """Who is asking: a valid, unrevoked token."""

    name: str
    role: Role
    subject_id: str | None
    shared: frozenset[str]  # a clinician's shared subjects, or a gateway's

    def may_read(self, subject_id: str) -> bool:
        return (self.role == "admin" or subject_id == self.subject_id
                or (self.role == "clinician" and subject_id in self.shared))

    def may_ingest(self, subject_id: str) -> bool:
        """Whether it may write the subject's samples, device events and live status."""
        return self.role == "admin" or (self.role == "gateway" and subject_id in self.shared)

    def may_write(self, subject_id: str) -> bool:
        return self.role == "admin" or (self.role == "caregiver"
                                        and subject_id == self.subject_id)

    def may_import(self, subject_id: str) -> bool:
        """Whether it may store CSV recordings as the subject's nights: who may write it, and a
        clinician it is shared with (recordings from elsewhere); nothing else a clinician may
        change."""
        return self.may_write(subject_id) or (self.role == "clinician"
                                               and subject_id in self.shared)

    def may(self, need: Need, subject_id: str) -> bool:
        return {"read": self.may_read, "import": self.may_import,
                "write": self.may_write}[need](subject_id)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="limbwatch"'})


def check_token(ctx: Context, request: Request, token: str) -> Principal:
    """The principal of `token`; 401 (counted against the client address) if it is not valid."""
    address = request.client.host if request.client else "?"
    now = ctx.now()
    limit: FailureLimit = request.app.state.failures
    limit.check(address, now)
    wanted = digest(token)
    found = ctx.records.token_by_digest(wanted)
    if found is None or not hmac.compare_digest(found.digest, wanted) or found.revoked:
        limit.failed(address, now)
        raise _unauthorised("the token is not valid (unknown or revoked)")
    return _principal_of(ctx, found)


def _principal_of(ctx: Context, token: Token) -> Principal:
    shared = (ctx.records.shared_subjects(token.name)
              if token.role in ("clinician", "gateway") else set())
    return Principal(token.name, token.role, token.subject_id, frozenset(shared))


def principal_now(ctx: Context, name: str) -> Principal | None:
    """The principal of the token `name` as the store has it now (its shares may have
    changed), None once it is revoked or gone: for a request that lasts, such as a stream."""
    token = ctx.records.token(name)
    return None if token is None or token.revoked else _principal_of(ctx, token)


async def principal(request: Request, ctx: Annotated[Context, Depends(context)],
              bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
              cookie: Annotated[str | None, Depends(_cookie)]) -> Principal:
    """The request's principal from `Authorization: Bearer` or the session cookie, else 401."""
    token = bearer.credentials if bearer is not None else cookie
    if not token:
        raise _unauthorised("this needs a token: Authorization: Bearer TOKEN")
    return check_token(ctx, request, token)


Who = Annotated[Principal, Depends(principal)]
Ctx = Annotated[Context, Depends(context)]
SubjectId = Annotated[str, Path(min_length=1, max_length=100)]
NightId = Annotated[int, Path(ge=1, le=2**53)]


def check_subject(ctx: Context, who: Principal, subject_id: str, need: Need) -> Subject:
    """The subject if `who` may do `need` with it: 403 if it may not see it or only read it,
    404 if there is no such subject."""
    if not who.may_read(subject_id):
        raise Refused(f"this token may not see subject {subject_id!r}")
    if not who.may(need, subject_id):
        raise Refused(f"this token may only read subject {subject_id!r}")
    subject = ctx.records.subject(subject_id)
    if subject is None:
        raise NotFound(f"no subject {subject_id!r}")
    return subject


def _night(ctx: Context, who: Principal, night_id: int, write: bool) -> NightRecord:
    night = ctx.records.night(night_id)
    if night is None or not who.may_read(night.subject_id):
        raise NotFound(f"no night {night_id}")
    if write and not who.may_write(night.subject_id):
        raise Refused(f"this token may only read night {night_id}")
    return night


async def readable_subject(ctx: Ctx, who: Who, subject_id: SubjectId) -> Subject:
    return check_subject(ctx, who, subject_id, "read")


async def writable_subject(ctx: Ctx, who: Who, subject_id: SubjectId) -> Subject:
    return check_subject(ctx, who, subject_id, "write")


async def readable_night(ctx: Ctx, who: Who, night_id: NightId) -> NightRecord:
    return _night(ctx, who, night_id, write=False)


async def writable_night(ctx: Ctx, who: Who, night_id: NightId) -> NightRecord:
    return _night(ctx, who, night_id, write=True)


ReadSubject = Annotated[Subject, Depends(readable_subject)]
WriteSubject = Annotated[Subject, Depends(writable_subject)]
ReadNight = Annotated[NightRecord, Depends(readable_night)]
WriteNight = Annotated[NightRecord, Depends(writable_night)]
