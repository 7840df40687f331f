"""Backtest and optimize jobs on arq: the service the api calls (:mod:`.service`), the worker
(:mod:`.worker`), the job function (:mod:`.runner`) and the state machine (:mod:`.state`)."""

from botfleet.jobs.errors import (
    ArtifactError,
    ArtifactNotFound,
    JobError,
    JobNotFound,
    JobStateError,
)
from botfleet.jobs.service import (
    artifact_path,
    cancel_job,
    create_job,
    get_job,
    job_events,
    list_jobs,
    reap_lost_jobs,
)

__all__ = [
    "ArtifactError",
    "ArtifactNotFound",
    "JobError",
    "JobNotFound",
    "JobStateError",
    "artifact_path",
    "cancel_job",
    "create_job",
    "get_job",
    "job_events",
    "list_jobs",
    "reap_lost_jobs",
]
