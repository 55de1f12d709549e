"""The FastAPI app: server-rendered leaderboard pages and a JSON API over the same views.

Pages: ``/`` (the tasks), ``/tasks/{name}`` (a ranked leaderboard with a forest plot),
``/submissions/{id}`` (status, progress, scores, trials, learning curves). API: ``/api/...``,
documented at ``/docs``. The app holds no global state: :func:`create_app` takes the database
URL, the catalogue folder, the MLflow URI and the organizers' token; only
:func:`app_from_settings` reads settings.

Everything public is aggregate over the hidden test set (scores, intervals) or about validation
(trials, curves): per-case test values would give away the test labels, so only
``/api/submissions/{id}/cases`` returns them, and only to a bearer of the organizers' token.
"""

from __future__ import annotations

import hmac
import math
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from medarena.store import Store
from medarena.tasks import TaskCatalogue
from medarena_leaderboard.svg import MISSING, ForestRow, curves_plot, forest_plot
from medarena_leaderboard.views import (
    ACTIVE_STATES,
    SPLIT_HASH_HELP,
    NotFoundError,
    Views,
    board_rows,
)

HERE = Path(__file__).resolve().parent
REFRESH_SECONDS = 5
BEARER = HTTPBearer(
    auto_error=False, description="the organizers' token: the server's MEDARENA_ADMIN_TOKEN"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
"""On every response: no content sniffing, no referrer to other sites, no framing."""
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""The pages' Content-Security-Policy: no script at all, styles from this server only, so text
that slipped through escaping could not run. FastAPI's /docs and /redoc load their scripts from
a CDN and are left without it."""
API_DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc")
ORGANIZERS_ONLY = (
    "per-case results on the hidden test set are for organizers only (they would reveal the "
    "test labels)"
)


def fmt_value(value: float | None) -> str:
    """A metric value for a table cell: 3 decimals (1 for large values), a dash when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3f}"


def fmt_time(value: str | None) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM UTC``."""
    return MISSING if not value else value[:16].replace("T", " ") + " UTC"


def fmt_param(value: Any) -> str:
    """A hyperparameter: floats to 3 significant digits (``0.00196``, ``1.44e-05``)."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_param(v)}" for k, v in sorted(params.items()))


def arrow(higher_is_better: bool | None) -> str:
    return "" if higher_is_better is None else ("↑" if higher_is_better else "↓")


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(
        value=fmt_value, time=fmt_time, param=fmt_param, params=fmt_params, arrow=arrow
    )
    return templates


def organizer_check(admin_token: str | None) -> Callable[..., None]:
    """A dependency that lets through only requests with ``Authorization: Bearer
    <admin_token>``: 403 for everyone when no token is configured, 401 without a bearer token,
    403 with a wrong one (compared in constant time)."""

    def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if not admin_token:
            raise HTTPException(
                status_code=403,
                detail=f"{ORGANIZERS_ONLY}; to enable this endpoint, start the server with "
                "MEDARENA_ADMIN_TOKEN set and send 'Authorization: Bearer <token>'",
            )
        if credentials is None:
            raise HTTPException(
                status_code=401,
                detail=f"{ORGANIZERS_ONLY}; send 'Authorization: Bearer <token>' with the "
                "server's MEDARENA_ADMIN_TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(credentials.credentials.encode(), admin_token.encode()):
            raise HTTPException(status_code=403, detail=f"{ORGANIZERS_ONLY}; wrong token")

    return check


def create_app(
    *,
    db_url: str,
    catalogue_dir: Path,
    tracking_uri: str | None = None,
    admin_token: str | None = None,
) -> FastAPI:
    """The web leaderboard over the store at ``db_url`` and the tasks in ``catalogue_dir``;
    learning curves are read from MLflow at ``tracking_uri`` when given. Per-case test results
    are served only to requests bearing ``admin_token`` (to nobody when it is ``None``)."""
    views = Views(Store(db_url), TaskCatalogue(catalogue_dir), tracking_uri)
    organizers_only = Depends(organizer_check(admin_token))
    templates = _templates()
    app = FastAPI(
        title="MedArena leaderboard",
        summary="Ranked results of submitted models on medical imaging tasks.",
        version="0.1.0",
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path not in API_DOCS:
            response.headers["Content-Security-Policy"] = PAGE_POLICY
        return response

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @app.exception_handler(NotFoundError)
    def not_found(request: Request, exc: NotFoundError) -> Response:
        """A task or submission that does not exist: a JSON 404 from the API, a page else."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return page(
            request,
            "not_found.html",
            status_code=404,
            message=str(exc),
            tasks=views.catalogue.names(),
        )

    # ---- pages ------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        return page(request, "index.html", tasks=views.task_summaries())

    @app.get("/tasks/{name}", response_class=HTMLResponse, include_in_schema=False)
    def task_page(request: Request, name: str) -> HTMLResponse:
        board = views.board(name)
        rows = board_rows(board)
        primary = board.primary
        forest = forest_plot(
            [
                ForestRow(
                    label=row["submission"],
                    detail=row["team"],
                    value=row[primary.name],
                    low=row[f"{primary.name}_ci"][0],
                    high=row[f"{primary.name}_ci"][1],
                    rank=row["rank"],
                )
                for row in rows
            ],
            metric=primary.title,
            higher_is_better=primary.higher_is_better,
            bounds=primary.range,
        )
        return page(
            request,
            "task.html",
            spec=board.spec,
            metrics=board.metrics,
            rows=rows,
            split_hash=board.split_hash,
            split_help=SPLIT_HASH_HELP,
            forest=forest,
        )

    @app.get("/submissions/{submission_id}", response_class=HTMLResponse, include_in_schema=False)
    def submission_page(request: Request, submission_id: int) -> HTMLResponse:
        shown = views.submission_page(submission_id)
        detail = shown.detail
        curves, why_no_curves = views.curves(detail)
        plot = (
            curves_plot(
                curves,
                metric=f"validation {detail['primary_metric']}",
                higher_is_better=shown.higher_is_better,
                highlight=shown.best_trial,
            )
            if curves
            else None
        )
        return page(
            request,
            "submission.html",
            sub=detail,
            progress=detail["progress"],
            refresh=REFRESH_SECONDS if detail["status"] in ACTIVE_STATES else None,
            curves=plot,
            why_no_curves=why_no_curves,
            best_trial=shown.best_trial,
            split_help=SPLIT_HASH_HELP,
        )

    # ---- API --------------------------------------------------------------------------------

    @app.get("/api/tasks", tags=["tasks"])
    def api_tasks() -> list[dict[str, Any]]:
        """Every task in the catalogue: name, title, kind, primary metric, entries, best value."""
        return views.task_summaries()

    @app.get("/api/tasks/{name}", tags=["tasks"])
    def api_task(name: str) -> dict[str, Any]:
        """A task's spec summary: metrics with their direction and range, budget, split hash."""
        return views.task_detail(name)

    @app.get("/api/tasks/{name}/leaderboard", tags=["tasks"])
    def api_leaderboard(name: str) -> list[dict[str, Any]]:
        """The ranked rows of a task (as ``medarena leaderboard NAME --format json``)."""
        return board_rows(views.board(name))

    @app.get(
        "/api/submissions/{submission_id}/cases",
        tags=["organizers"],
        dependencies=[organizers_only],
        responses={401: {"description": "no bearer token"}, 403: {"description": "not allowed"}},
    )
    def api_case_scores(submission_id: int) -> list[dict[str, Any]]:
        """A scored submission's per-case values on the hidden test set (for statistics), for
        organizers only: ``Authorization: Bearer <MEDARENA_ADMIN_TOKEN>``."""
        return views.case_scores(submission_id)

    @app.get("/api/submissions/{submission_id}", tags=["submissions"])
    def api_submission(submission_id: int) -> dict[str, Any]:
        """A submission's status, progress, scores, best parameters and trials."""
        return views.submission_detail(submission_id)

    return app


def app_from_settings() -> FastAPI:
    """The app configured from the environment (``MEDARENA_*``), as ``medarena serve`` runs it;
    also ``uvicorn --factory medarena_leaderboard.app:app_from_settings``. What it creates in the
    state folder (the leaderboard database when missing) is the owner's only."""
    from medarena.settings import OWNER_ONLY_UMASK, load_settings, secure_home

    os.umask(OWNER_ONLY_UMASK)
    settings = load_settings()
    secure_home(settings.home)
    return create_app(
        db_url=settings.leaderboard_url,
        catalogue_dir=settings.catalogue_dir,
        tracking_uri=settings.tracking_uri,
        admin_token=settings.admin_token,
    )
