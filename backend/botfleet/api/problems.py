"""Every error the api returns is an RFC 9457 problem details document
(``application/problem+json``): ``type``, ``title``, ``status``, ``detail`` and, when an input
field is at fault, ``key`` (its dotted path)."""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from botfleet.fleet.errors import FleetError, TooManyAttempts
from botfleet.jobs.errors import ArtifactNotFound, JobError, JobNotFound, JobStateError
from botfleet.profiles import ConfigError, UnknownProfile

__all__ = ["exception_handlers", "problem"]

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def _fleet_error(_: Request[Any, Any, Any], exc: FleetError) -> Response[dict[str, Any]]:
    response = problem(exc.status, exc.title, exc.message, key=exc.key)
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _job_error(_: Request[Any, Any, Any], exc: JobError) -> Response[dict[str, Any]]:
    if isinstance(exc, (JobNotFound, ArtifactNotFound)):
        return problem(404, "Not found", exc.message, key=exc.key)
    if isinstance(exc, JobStateError):
        return problem(409, "Conflict", exc.message, key=exc.key)
    return problem(422, "Invalid job", exc.message, key=exc.key)


def _config_error(_: Request[Any, Any, Any], exc: ConfigError) -> Response[dict[str, Any]]:
    return problem(422, "Invalid config", str(exc), key=exc.key)


def _unknown_profile(_: Request[Any, Any, Any], exc: UnknownProfile) -> Response[dict[str, Any]]:
    return problem(422, "Unknown profile", str(exc.args[0] if exc.args else exc), key="profile")


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = exc.extra if isinstance(exc.extra, list) else []
    parts = [f"{e.get('key') or 'body'}: {e.get('message')}" for e in errors if isinstance(e, dict)]
    detail = "; ".join(parts) or str(exc.detail)
    key = errors[0].get("key") if errors and isinstance(errors[0], dict) else None
    return problem(400, "Invalid request", detail, key=key, errors=errors or None)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    return problem(exc.status_code, str(exc.detail), str(exc.detail))


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", path=request.url.path)
    return problem(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Internal server error",
        "botfleet hit an unexpected error; the api log has the details.",
    )


exception_handlers: dict[type[Exception] | int, Any] = {
    FleetError: _fleet_error,
    JobError: _job_error,
    ConfigError: _config_error,
    UnknownProfile: _unknown_profile,
    ValidationException: _validation,
    HTTPException: _http,
    Exception: _internal,
}
