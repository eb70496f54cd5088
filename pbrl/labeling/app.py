"""The labeling web app: a JSON API, segment videos and the static page (FastAPI).

What reaches a route has passed the HTTP boundary (:class:`Boundary`): a ``Host`` the server
answers to (a foreign one — DNS rebinding — is 400), writes only as ``application/json``
(415: a cross-site form or ``text/plain`` POST needs no CORS pre-flight), and a declared body
of at most :data:`MAX_BODY` bytes (413, before a byte is read). Every ``/api`` and ``/video``
request then names its annotator by token — the ``Authorization: Bearer <token>`` header, or
``?token=`` (how a ``<video>`` element sends it) — and is refused with 401 without a valid,
unrevoked, unexpired one, before its body is read or parsed. Inputs are validated before
anything is written: unknown pair 404, a pair not assigned to the caller 403, a second or
changed answer to an answered assignment 409, a body that is not a JSON object 400, a field
out of its domain 422; a refused request leaves the store unchanged. Videos come only from
the render cache folder, by integer segment id, and only for segments of the caller's own
assignments (HTTP Range supported, so browsers can seek). Responses carry a strict
Content-Security-Policy; the page shows the task text as text, never as HTML.

API::

    GET  /api/session   → {annotator, task, progress}
    GET  /api/next      → {pair: {id, round, left: {segment, video}, right: {…}} | null, progress}
    POST /api/label     {pair, choice: left|right|equal|skip, request_id, note?} → {label_id, duplicate, progress}
    GET  /api/progress  → {yours, round: {index, done, quota}, budget: {answered, asked, total}}
    GET  /video/{segment}.mp4
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pbrl.labeling.assignments import LabelingError, LabelQueue
from pbrl.labeling.render import Unrenderable, VideoCache

STATIC = Path(__file__).parent / "static"
MAX_BODY = 16 * 1024
"""Bytes a request body may hold: an answer with the longest note, every character escaped, is under 7 KiB."""
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def host_name(header: str) -> str:
    """The host name of a ``Host`` header, lower-case, without port, brackets or a trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):  # [::1]:8765
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.rsplit(":", 1)[0]
    return value.rstrip(".")


class Boundary:
    """The checks every request passes before any route runs (see the module docstring), and the
    security headers every response carries. ``allow_host`` says whether a ``Host`` name is one this
    server answers to."""

    def __init__(self, app: ASGIApp, allow_host: Callable[[str], bool]) -> None:
        self.app, self.allow_host = app, allow_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = _CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"  # links carry tokens
                if path.startswith("/api/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        refusal = self.refusal(scope["method"], Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send_with_headers)
        else:
            status, detail = refusal
            await JSONResponse({"detail": detail}, status)(scope, receive, send_with_headers)

    def refusal(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """``(status, reason)`` for a request refused at the boundary, else ``None``; reads no body."""
        host = host_name(headers.get("host", ""))
        if not host or not self.allow_host(host):
            return 400, f"this server does not answer to host {host!r}: open the link the server printed"
        if method not in _SAFE_METHODS:
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                return 415, f"send the body as JSON (Content-Type: application/json), not {media_type or 'untyped'}"
        length = headers.get("content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > MAX_BODY):
            return 413, f"a request body holds at most {MAX_BODY} bytes (Content-Length: {length[:20]})"
        return None


async def _read_body(request: Request) -> bytes:
    """The body, at most :data:`MAX_BODY` bytes also when it arrives chunked without a length (else 413)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(413, f"a request body holds at most {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class LabelIn(BaseModel):
    """One answer, as the page sends it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    pair: int = Field(ge=1, le=2**62)
    choice: Literal["left", "right", "equal", "skip"]
    request_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    """Chosen by the page once per answer; a retry with the same id is acknowledged without a second label."""
    note: str = Field(default="", max_length=1000)


def _answer(body: bytes) -> LabelIn:
    """The answer in a request body: 400 unless a JSON object, 422 for a field out of its domain."""
    try:
        value: Any = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past the parser's depth
        value = None
    if not isinstance(value, dict):
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": "not a JSON object"}])
    try:
        return LabelIn.model_validate(value)
    except ValidationError as error:
        raise RequestValidationError([{**p, "loc": ("body", *p["loc"])} for p in error.errors()]) from None


def create_app(queue: LabelQueue, cache: VideoCache, task: str, allow_host: Callable[[str], bool],
               render_timeout: float = 120.0) -> FastAPI:
    """The app for one store's label queue and video cache; ``task`` is shown above the videos,
    ``allow_host`` says which ``Host`` names it answers to (see :class:`Boundary`)."""
    app = FastAPI(title="pbrl labeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(Boundary, allow_host=allow_host)

    def annotator(request: Request, token: str | None = Query(None, max_length=128)) -> str:
        header = request.headers.get("authorization", "")
        value = token or (header[7:] if header.lower().startswith("bearer ") else None)
        if not value:
            raise HTTPException(401, "missing annotator token: open the link you were given (…/?token=…)")
        return queue.authenticate(value[:128])

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" or tuple(p.get("loc", ())) == ("body",) for p in problems):
            return JSONResponse({"detail": "the body must be a JSON object: {pair, choice, request_id, note}"}, 400)
        where = "; ".join(f"{'.'.join(str(x) for x in p.get('loc', ()))}: {p.get('msg')}" for p in problems)
        return JSONResponse({"detail": f"invalid request: {where}"}, status_code=422)

    @app.exception_handler(LabelingError)
    async def refused(_: Request, error: LabelingError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.status)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/session")
    def session(who: str = Depends(annotator)) -> dict:
        return {"annotator": who, "task": task, "progress": queue.progress(who)}

    @app.get("/api/progress")
    def progress(who: str = Depends(annotator)) -> dict:
        return queue.progress(who)

    @app.get("/api/next")
    def next_pair(who: str = Depends(annotator)) -> dict:
        assignment = queue.next_for(who)
        if assignment is None:
            return {"pair": None, "progress": queue.progress(who)}
        cache.prefetch([assignment.shown_left, assignment.shown_right], urgent=True)  # first, if still waiting
        side = lambda segment: {"segment": segment, "video": f"/video/{segment}.mp4"}  # noqa: E731
        pair = {"id": assignment.query_id, "round": assignment.round,
                "left": side(assignment.shown_left), "right": side(assignment.shown_right)}
        return {"pair": pair, "progress": queue.progress(who)}

    def store_answer(who: str, answer: LabelIn) -> dict:
        stored = queue.submit(who, answer.pair, answer.choice, answer.request_id, answer.note)
        return {"label_id": stored.label_id, "duplicate": stored.duplicate, "progress": queue.progress(who)}

    @app.post("/api/label")
    async def label(request: Request, who: str = Depends(annotator)) -> dict:
        # the body is read only now, after the token was checked (a body parameter would be read before it)
        answer = _answer(await _read_body(request))
        return await run_in_threadpool(store_answer, who, answer)

    @app.get("/video/{segment_id}.mp4")
    def video(segment_id: int, who: str = Depends(annotator)) -> FileResponse:
        if not 1 <= segment_id < 2**63 or not queue.shows(who, segment_id):  # ids are 64-bit integers
            raise HTTPException(404, f"no video {segment_id} among your pairs")
        try:
            path = cache.request(segment_id, urgent=True).result(timeout=render_timeout)
        except Unrenderable as error:
            raise HTTPException(404, str(error)) from None
        except concurrent.futures.TimeoutError:
            raise HTTPException(503, "the video is still rendering; try again", headers={"Retry-After": "2"}) from None
        except Exception as error:  # a failed render: say why, and let a retry render again
            raise HTTPException(500, f"rendering segment {segment_id} failed: {error}") from error
        return FileResponse(path, media_type="video/mp4", headers={"Cache-Control": "private, max-age=86400"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
