"""The labeling web app: a JSON API, segment videos and the static page (FastAPI).

Every ``/api`` and ``/video`` request names its annotator by token — the
``Authorization: Bearer <token>`` header, or ``?token=`` (how a ``<video>`` element
sends it) — and is refused with 401 without a valid one. Inputs are validated before
anything is written: unknown pair 404, a pair not assigned to the caller 403, a second
answer to an answered assignment 409, a body that is not a JSON object 400, a field out
of its domain 422; a refused request leaves the store unchanged. Videos come only from the render cache
folder, by integer segment id, and only for segments of the caller's own assignments
(HTTP Range supported, so browsers can seek). Responses carry a strict
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
from pathlib import Path
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from pbrl.labeling.assignments import LabelingError, LabelQueue
from pbrl.labeling.render import Unrenderable, VideoCache

STATIC = Path(__file__).parent / "static"
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class LabelIn(BaseModel):
    """One answer, as the page sends it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    pair: int = Field(ge=1, le=2**62)
    choice: Literal["left", "right", "equal", "skip"]
    request_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    """Chosen by the page once per answer; a retry with the same id is acknowledged without a second label."""
    note: str = Field(default="", max_length=1000)


def create_app(queue: LabelQueue, cache: VideoCache, task: str, render_timeout: float = 120.0) -> FastAPI:
    """The app for one store's label queue and video cache; ``task`` is shown above the videos."""
    app = FastAPI(title="pbrl labeling", docs_url=None, redoc_url=None, openapi_url=None)

    def annotator(request: Request, token: str | None = Query(None, max_length=128)) -> str:
        header = request.headers.get("authorization", "")
        value = token or (header[7:] if header.lower().startswith("bearer ") else None)
        if not value:
            raise HTTPException(401, "missing annotator token: open the link you were given (…/?token=…)")
        name = queue.annotator_for(value[:128])
        if name is None:
            raise HTTPException(401, "invalid annotator token: ask for a new link")
        return name

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

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # noqa: ANN001, ANN202 (Starlette's signature)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"  # links carry tokens
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

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

    @app.post("/api/label")
    def label(answer: LabelIn, who: str = Depends(annotator)) -> dict:
        stored = queue.submit(who, answer.pair, answer.choice, answer.request_id, answer.note)
        return {"label_id": stored.label_id, "duplicate": stored.duplicate, "progress": queue.progress(who)}

    @app.get("/video/{segment_id}.mp4")
    def video(segment_id: int, who: str = Depends(annotator)) -> FileResponse:
        if segment_id < 1 or not queue.shows(who, segment_id):
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
