"""The live web page: a FastAPI application over a store. It reads the store and, for a person's
decisions, writes through ``agent/approval.py`` (the same checks as ``labpilot approve/reject``); it
never drives the loop or talks to the actors.

Updates are pushed as Server-Sent Events: each open page has a stream that watches the store's
outbox (``state.change_mark``, one indexed query per ``watch_seconds``) and sends the campaign's
state when it changed. Access: a ``token`` (required off loopback, see ``server.py``) is accepted as
``Authorization: Bearer …``, as a ``token`` query parameter (then kept in a cookie, for the browser's
own requests) or as that cookie; anything else gets 401 saying how to authenticate.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from agent.approval import ApprovalRefused, approve, reject
from agent.store import Approval, Store, UnknownCampaign
from agent.ui.figures import FigureCache
from agent.ui.page import campaign_page, list_page
from agent.ui.state import campaign_list, campaign_state, change_mark
from instruments.types import Record

TOKEN_COOKIE = "labpilot_token"


class ApproveRequest(Record):
    edits: dict[str, str | float | int] = Field(default_factory=dict, description="parameter → new value (text or number)")
    user: str | None = Field(default=None, max_length=200, description="who decides (default: the server's $USER)")


class RejectRequest(Record):
    reason: str = Field(description="why; required")
    user: str | None = Field(default=None, max_length=200)


def create_app(store: Store, *, token: str | None = None, watch_seconds: float = 0.3) -> FastAPI:
    """The page's application over ``store``; ``token``: required of every request when set."""
    app = FastAPI(title="labpilot", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.stopping = threading.Event()  # set by the server on shutdown: event streams end
    if token:
        app.middleware("http")(_token_guard(token))
    _page_routes(app, store)
    _state_routes(app, store, FigureCache(), watch_seconds)
    _decision_routes(app, store)
    return app


def _page_routes(app: FastAPI, store: Store) -> None:
    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return list_page()

    @app.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
    def campaign(campaign_id: str) -> Response:
        try:
            store.campaign(campaign_id)
        except UnknownCampaign as exc:
            return HTMLResponse(f"<p>{exc}</p><p><a href='../'>all campaigns</a></p>", status_code=404)
        return HTMLResponse(campaign_page(campaign_id))


def _state_routes(app: FastAPI, store: Store, figures: FigureCache, watch_seconds: float) -> None:
    @app.get("/api/campaigns")
    def campaigns() -> list[dict[str, Any]]:
        return campaign_list(store)

    # Before /api/campaigns/{campaign_id}: routes match in order.
    @app.get("/api/campaigns/stream")
    async def campaigns_stream(request: Request) -> EventSourceResponse:
        return EventSourceResponse(_watch(app, request, lambda: campaign_list(store), "campaigns", watch_seconds))

    def state_of(campaign_id: str) -> dict[str, Any]:
        state = campaign_state(store, campaign_id)
        drawn = figures.figures(store, campaign_id, tuple(state["mark"]))
        mark = "-".join(map(str, state["mark"]))
        state["figures"] = [{"alt": alt, "url": f"../api/campaigns/{campaign_id}/figures/{i}.png?mark={mark}"}
                            for i, (alt, _) in enumerate(drawn)]
        return state

    @app.get("/api/campaigns/{campaign_id}")
    def state(campaign_id: str) -> Any:
        try:
            return state_of(campaign_id)
        except UnknownCampaign as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.get("/api/campaigns/{campaign_id}/figures/{index}.png")
    def figure(campaign_id: str, index: int) -> Response:
        try:
            drawn = figures.figures(store, campaign_id, change_mark(store, campaign_id))
        except UnknownCampaign as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        if not 0 <= index < len(drawn):
            return JSONResponse({"detail": f"no figure {index}"}, status_code=404)
        return Response(drawn[index][1], media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/campaigns/{campaign_id}/stream")
    async def campaign_stream(request: Request, campaign_id: str) -> Any:
        try:
            await run_in_threadpool(store.campaign, campaign_id)
        except UnknownCampaign as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return EventSourceResponse(_watch(app, request, lambda: state_of(campaign_id), "state", watch_seconds,
                                          mark=lambda: change_mark(store, campaign_id)))


def _decision_routes(app: FastAPI, store: Store) -> None:
    @app.post("/api/attempts/{attempt_id}/approve")
    def approve_attempt(attempt_id: str, body: ApproveRequest) -> JSONResponse:
        return _decision(lambda: approve(store, attempt_id, edits=body.edits, user=body.user))

    @app.post("/api/attempts/{attempt_id}/reject")
    def reject_attempt(attempt_id: str, body: RejectRequest) -> JSONResponse:
        return _decision(lambda: reject(store, attempt_id, reason=body.reason, user=body.user))


def _decision(decide: Callable[[], Approval]) -> JSONResponse:
    """A person's decision through ``agent/approval.py``; refused → 409 with the reason, nothing changed."""
    try:
        a = decide()
    except ApprovalRefused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)
    return JSONResponse({"attempt_id": a.attempt_id, "verdict": a.verdict, "user": a.user, "reason": a.reason,
                         "params": a.params, "proposed": a.proposed_params})


async def _watch(app: FastAPI, request: Request, read: Callable[[], Any], event: str, every: float,
                 *, mark: Callable[[], Any] | None = None) -> AsyncIterator[dict[str, str]]:
    """Send ``read()`` as ``event`` now and whenever ``mark()`` (default: the value itself) changes."""
    last: Any = object()
    while not app.state.stopping.is_set() and not await request.is_disconnected():
        current = await run_in_threadpool(mark or read)
        if current != last:
            value = current if mark is None else await run_in_threadpool(read)
            last = current
            yield {"event": event, "data": json.dumps(value, default=str)}
        await asyncio.sleep(every)


def _token_guard(token: str) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Middleware: every request shows ``token`` (header, query or cookie), or gets 401 saying how."""

    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        header = request.headers.get("authorization", "")
        offered = [header[7:] if header.lower().startswith("bearer ") else "", request.query_params.get("token", ""),
                   request.cookies.get(TOKEN_COOKIE, "")]
        if not any(o and hmac.compare_digest(o.encode(), token.encode()) for o in offered):
            message = ("401 unauthorized: this labpilot page needs its access token (LABPILOT_UI_TOKEN / --token): "
                       "open it once as /?token=TOKEN, or send the header 'Authorization: Bearer TOKEN'")
            return JSONResponse({"detail": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    return guard
