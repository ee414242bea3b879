"""Training jobs: a FIFO queue drained by one worker thread (one training at a time per device).

Training runs in the server process, off the event loop, so HTTP requests (progress polls, clicks
on other scenes) keep being answered. Job records are written to disk on every state change (and
at most once a second for progress) so a restarted server knows what was running: those jobs are
marked "interrupted" and can be resumed from their checkpoints.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
import uuid
from collections import deque
from datetime import datetime, timezone
from typing import Callable

from clickgauss_core.errors import ClickGaussInputError
from clickgauss_core.protocol import (
    ACTIVE_STATES, CANCELLED, DONE, FAILED, INTERNAL_ERROR, INTERRUPTED, JOB_NOT_FOUND, JOB_NOT_RESUMABLE, QUEUED,
    RESUMABLE_STATES, RUNNING, TRAINING_RUNNING,
)

from ..features.pipeline import TrainingRequest
from .errors import ApiError, bounded_message, describe_input_error, input_error_code, unexpected_error_message
from .records import JobRecord, RecordStore

log = logging.getLogger("clickgauss.server")

PROGRESS_SAVE_INTERVAL_S = 1.0
NO_SUCH_JOB = ("the backend has no record of this training (it was restarted with another cache folder, or the "
               "cache was cleared): train again")

# run(job, report_progress, should_cancel) -> None; raises TrainingCancelled when asked to stop.
TrainingRunner = Callable[[JobRecord, Callable, Callable[[], bool]], None]


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def finite_or_none(value) -> float | None:
    """JSON has no NaN/inf: a diverged loss is reported as null rather than breaking the response."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class JobManager:
    def __init__(self, store: RecordStore, runner: TrainingRunner, cancelled_error: type[BaseException],
                 scene_name: Callable[[str], str] = lambda scene_id: "this scene"):
        self.store = store
        self.scene_name = scene_name  # scene id -> its file name, for messages
        self.runner = runner
        self.cancelled_error = cancelled_error
        self._lock = threading.Condition()
        self._jobs: dict[str, JobRecord] = store.load_jobs()
        self._queue: deque[str] = deque()
        self._cancel_requested: set[str] = set()
        self._running: str | None = None
        self._stopping = False
        self._last_saved: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        for job in self._jobs.values():
            if job.state in ACTIVE_STATES:  # the previous server died with it
                job.state = INTERRUPTED
                job.eta_seconds = None
                store.save_job(job)

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="clickgauss-training", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the worker to stop without waiting: a running training stops at its next
        iteration and is left "interrupted" (resumable). Safe from a signal handler: no lock."""
        self._stopping = True

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker; a running training is stopped and left "interrupted" (resumable)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # queries -----------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ApiError(404, JOB_NOT_FOUND, f"no training job with id {job_id}")
            return self._describe(job)

    def list(self, scene_id: str | None = None) -> list[dict]:
        with self._lock:
            jobs = [job for job in self._jobs.values() if scene_id is None or job.scene_id == scene_id]
            jobs.sort(key=lambda job: (job.created_at, job.job_id), reverse=True)
            return [self._describe(job) for job in jobs]

    def active_job_for(self, scene_id: str) -> str | None:
        with self._lock:
            for job in self._jobs.values():
                if job.scene_id == scene_id and job.state in ACTIVE_STATES:
                    return job.job_id
        return None

    def _describe(self, job: JobRecord) -> dict:
        payload = job.to_json()
        payload["queue_position"] = (self._queue.index(job.job_id) + 1) if job.job_id in self._queue else None
        return payload

    # commands ----------------------------------------------------------------------------------
    def submit(self, scene_id: str, request: TrainingRequest) -> dict:
        with self._lock:
            self._refuse_if_active(scene_id)
            job = JobRecord(job_id=uuid.uuid4().hex, scene_id=scene_id, request=request, created_at=utc_now())
            self._jobs[job.job_id] = job
            self.store.save_job(job)
            self._queue.append(job.job_id)
            self._lock.notify_all()
            return self._describe(job)

    def resume(self, job_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ApiError(404, JOB_NOT_FOUND, NO_SUCH_JOB)
            if job.state not in RESUMABLE_STATES:
                raise ApiError(409, JOB_NOT_RESUMABLE,
                               f"the training of {self.scene_name(job.scene_id)} is {job.state}: only a cancelled, "
                               "failed or interrupted training can be resumed; start a new training instead")
            self._refuse_if_active(job.scene_id)
            job.state, job.error, job.finished_at, job.eta_seconds = QUEUED, None, None, None
            self._cancel_requested.discard(job_id)
            self.store.save_job(job)
            self._queue.append(job_id)
            self._lock.notify_all()
            return self._describe(job)

    def cancel(self, job_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise ApiError(404, JOB_NOT_FOUND, NO_SUCH_JOB)
            if job.state == QUEUED:
                self._queue.remove(job_id)
                self._finish(job, CANCELLED)
            elif job.state == RUNNING:
                self._cancel_requested.add(job_id)  # the worker notices at its next iteration
            return self._describe(job)

    def _refuse_if_active(self, scene_id: str) -> None:
        active = self.active_job_for(scene_id)
        if active is not None:
            raise ApiError(409, TRAINING_RUNNING,
                           f"{self.scene_name(scene_id)} is already being trained: wait for that training to "
                           "finish, or cancel it first")

    # the worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._jobs[self._queue.popleft()]
                job.state, job.started_at = RUNNING, utc_now()
                # A resumed job reports afresh: what it shows comes from this run, not the last one.
                job.stage, job.iteration, job.total, job.losses, job.eta_seconds = None, 0, 0, {}, None
                self._running = job.job_id
                self.store.save_job(job)
            self._run(job)
            with self._lock:
                self._running = None
                self._cancel_requested.discard(job.job_id)

    def _run(self, job: JobRecord) -> None:
        def should_cancel() -> bool:
            return self._stopping or job.job_id in self._cancel_requested

        def report(stage: str, iteration: int, total: int, losses: dict | None = None,
                   eta_seconds: float | None = None) -> None:
            with self._lock:
                job.stage, job.iteration, job.total = stage, int(iteration), int(total)
                job.losses = {str(name): finite_or_none(value) for name, value in (losses or {}).items()}
                job.eta_seconds = finite_or_none(eta_seconds)
                now = time.monotonic()
                if now - self._last_saved.get(job.job_id, 0.0) >= PROGRESS_SAVE_INTERVAL_S:
                    self._last_saved[job.job_id] = now
                    self.store.save_job(job)

        try:
            self.runner(job, report, should_cancel)
        except self.cancelled_error:
            with self._lock:
                self._finish(job, INTERRUPTED if self._stopping and job.job_id not in self._cancel_requested
                             else CANCELLED)
        except ApiError as exc:
            with self._lock:
                self._finish(job, FAILED, {"code": exc.code, "message": exc.message})
        except ClickGaussInputError as exc:
            with self._lock:
                self._finish(job, FAILED, {"code": input_error_code(exc), "message": describe_input_error(exc)})
        except Exception as exc:  # a bug in training must not kill the worker thread
            log.error("training job %s failed:\n%s", job.job_id, traceback.format_exc())
            with self._lock:
                self._finish(job, FAILED, {"code": INTERNAL_ERROR,
                                             "message": unexpected_error_message(exc, "the training")})
        else:
            with self._lock:
                job.stage = DONE
                self._finish(job, DONE)

    def _finish(self, job: JobRecord, state: str, error: dict | None = None) -> None:
        if error is not None:
            error = {**error, "message": bounded_message(error["message"])}
        job.state, job.error, job.finished_at, job.eta_seconds = state, error, utc_now(), None
        if state == DONE:
            job.eta_seconds = 0.0
        self.store.save_job(job)
        self._lock.notify_all()
