"""The annotation web app (FastAPI on Starlette): the annotator page, the dashboard, their API.

Routes (every one needs a token; only ``/login`` takes it from the query string):

- ``GET /login?token=T`` — checks T, sets it as an ``HttpOnly; SameSite=Strict`` cookie and
  redirects to ``/`` (annotators) or ``/dashboard`` (the owner), so the token leaves the URL.
- ``GET /`` — the annotator page; ``GET /api/next`` — the item to show (an opaque id, its
  modality, the transcript for text items, a media URL for the others; never the clip id);
  ``POST /api/vote`` ``{"assignment", "label"}``; ``POST /api/skip`` ``{"assignment"}``.
- ``GET /media/{assignment}`` — the isolated file of one of *your* items: the path comes from
  the server's media index, never from the request, so no file outside the prepared media can
  be named (``PreparedMedia.path`` also re-checks containment).
- ``GET /dashboard``, ``GET /api/dashboard`` — owner only.

A token may also come as ``Authorization: Bearer T`` (scripts, tests). Missing or wrong
tokens get 401 on every path, existing or not; a valid token on the other role's routes, 403.
Requests that change state must be JSON and, when the browser sends an ``Origin``, come from
this site. Pages carry a nonce-based Content-Security-Policy; responses are ``no-store``.
FastAPI: https://fastapi.tiangolo.com (MIT); Starlette: https://www.starlette.io (BSD-3-Clause).
"""

from __future__ import annotations

import secrets
from importlib import resources
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sdme.annotate import INSTRUCTIONS
from sdme.annotate.dashboard import summarize
from sdme.annotate.media import MEDIA_TYPES
from sdme.annotate.project import Project
from sdme.annotate.store import Principal, VoteError

_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


class Answer(BaseModel):
    assignment: str = Field(max_length=100)
    label: str = Field(max_length=200)


class Skip(BaseModel):
    assignment: str = Field(max_length=100)


def _page(name: str) -> str:
    return resources.files("sdme.annotate").joinpath("web", name).read_text(encoding="utf-8")


def _html(template: str, status: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    csp = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
           "media-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'")
    return HTMLResponse(template.replace("{{NONCE}}", nonce), status_code=status,
                        headers={"Content-Security-Policy": csp})


def _denied(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept",
                                                                                         ""):
        return JSONResponse({"detail": message}, status_code=status)
    return HTMLResponse(f"<!doctype html><title>SDME annotation</title><p>{message}</p>",
                        status_code=status)


def create_app(project: Project) -> FastAPI:
    """The ASGI app serving ``project`` (its media must be prepared)."""
    if project.media is None:
        raise ValueError(f"{project.raw_dir}: media not prepared")
    store, media, taxonomy = project.store, project.media, list(project.taxonomy)
    cookie = f"sdme_annotate_{store.seed[:8]}"
    annotator_page, dashboard_page = _page("annotator.html"), _page("dashboard.html")
    app = FastAPI(title="sdme annotate", docs_url=None, redoc_url=None, openapi_url=None)

    async def check(request: Request) -> Response | None:
        """None when the request may proceed (``request.state.principal`` set), else the refusal."""
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else \
            request.cookies.get(cookie)
        principal = await run_in_threadpool(store.authenticate, token)
        if principal is None:
            return _denied(request, 401, "A valid link is needed: open the personal link you "
                                         "were given.")
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin:
            # This site is the Host asked for, or the public URL a reverse proxy serves.
            public = await run_in_threadpool(lambda: project.url)
            if urlsplit(origin).netloc not in {request.headers.get("host"),
                                               urlsplit(public).netloc}:
                return _denied(request, 403, "cross-site request refused")
        request.state.principal = principal
        return None

    @app.middleware("http")
    async def authenticate(request: Request, call_next) -> Response:
        refusal = None if request.url.path == "/login" else await check(request)
        response = refusal or await call_next(request)
        for key, value in _HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    def role(request: Request, wanted: str) -> Principal:
        principal: Principal = request.state.principal
        if principal.role != wanted:
            raise HTTPException(403, f"this page is for the {wanted}")
        return principal

    @app.get("/login")
    def login(request: Request, token: str = "") -> Response:
        principal = store.authenticate(token)
        if principal is None:
            return _denied(request, 401, "This link is not valid (mistyped or replaced). Ask "
                                         "the corpus owner for a new one.")
        target = "/dashboard" if principal.role == "owner" else "/"
        response = RedirectResponse(target, status_code=303)
        secure = request.url.scheme == "https" or project.url.startswith("https://")
        response.set_cookie(cookie, token, httponly=True, samesite="strict", path="/",
                            secure=secure, max_age=180 * 24 * 3600)
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = JSONResponse({"ok": True})
        response.delete_cookie(cookie, path="/")
        return response

    @app.get("/")
    def annotator_home(request: Request) -> Response:
        if request.state.principal.role == "owner":
            return RedirectResponse("/dashboard", status_code=303)
        return _html(annotator_page)

    @app.get("/api/next")
    def next_item(request: Request) -> dict[str, object]:
        me = role(request, "annotator")
        assignment = store.next_item(me.id)
        item = None
        if assignment is not None:
            item = {"id": assignment.id, "modality": assignment.modality,
                    "instructions": INSTRUCTIONS[assignment.modality],
                    "text": media.read_text(assignment.clip_id)
                    if assignment.modality == "text" else None,
                    "media": None if assignment.modality == "text"
                    else f"/media/{assignment.id}"}
        return {"name": me.name, "taxonomy": taxonomy, "item": item,
                "progress": store.progress(me.id)}

    @app.post("/api/vote")
    def vote(request: Request, answer: Answer) -> dict[str, object]:
        me = role(request, "annotator")
        try:
            duplicate = store.vote(me.id, answer.assignment, answer.label, taxonomy)
        except VoteError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return {"ok": True, "duplicate": duplicate}

    @app.post("/api/skip")
    def skip(request: Request, body: Skip) -> dict[str, object]:
        me = role(request, "annotator")
        try:
            store.skip(me.id, body.assignment)
        except VoteError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return {"ok": True}

    @app.get("/media/{assignment_id}")
    def media_file(request: Request, assignment_id: str) -> Response:
        me = role(request, "annotator")
        assignment = store.assignment(me.id, assignment_id)
        path = None if assignment is None or assignment.modality == "text" else \
            media.path(assignment.clip_id, assignment.modality)
        if path is None:
            raise HTTPException(404, "no such media for you")
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix,
                                                             "application/octet-stream"))

    @app.get("/dashboard")
    def dashboard_home(request: Request) -> Response:
        role(request, "owner")
        return _html(dashboard_page)

    @app.get("/api/dashboard")
    def dashboard(request: Request) -> dict[str, object]:
        role(request, "owner")
        summary = summarize(store.votes(), store.items(), store.people(), store.settings(),
                            taxonomy, store.open_leases())
        summary["corpus"] = f"{project.manifest.name} {project.manifest.version}"
        return summary

    return app


__all__ = ["create_app"]
