"""Errors of the controller side. The api turns each into an RFC 9457 problem (status below);
messages say what was wrong and what to do."""

from __future__ import annotations

__all__ = ["Conflict", "FleetError", "Invalid", "NotFound", "TooManyAttempts", "Unauthorized"]


class FleetError(Exception):
    """Base class. ``status`` is the HTTP status the api answers with; ``key`` names the
    offending field when there is one."""

    status = 400
    title = "Bad request"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


class Invalid(FleetError):
    status = 422
    title = "Invalid input"


class NotFound(FleetError):
    status = 404
    title = "Not found"


class Conflict(FleetError):
    status = 409
    title = "Conflict"


class Unauthorized(FleetError):
    status = 401
    title = "Not authenticated"


class TooManyAttempts(FleetError):
    """Refused for now; ``retry_after`` seconds until it is allowed again (the api sends
    it as ``Retry-After``, RFC 9110 section 10.2.3)."""

    status = 429
    title = "Too many attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
