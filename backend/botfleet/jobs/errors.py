"""Errors of the job service. Each is a :class:`ValueError` (bad request) unless noted; the
api maps :class:`JobNotFound` to 404, :class:`JobStateError` to 409, :class:`ArtifactNotFound`
to 404 and the rest to 400/422. Messages say what was wrong and what to do."""

from __future__ import annotations

__all__ = ["ArtifactError", "ArtifactNotFound", "JobError", "JobNotFound", "JobStateError"]


class JobError(ValueError):
    """A job request that cannot be carried out. ``key`` names the offending field, if any."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key


class JobNotFound(JobError, LookupError):
    """No job with that id."""


class JobStateError(JobError):
    """The job is in a state that does not allow the operation (e.g. cancel a finished job)."""


class ArtifactError(JobError):
    """A requested artifact name is not a plain relative path inside the job directory."""


class ArtifactNotFound(ArtifactError, LookupError):
    """The artifact does not exist (or the job has no directory yet)."""
