"""Video jobs of the web demo: an uploaded clip is stylized in the background, its progress polled.

``POST /api/videos`` hands a clip to :meth:`VideoJobs.start`, which writes it into this app's
private temp folder and runs :func:`sdk.video.stylize_video` in a worker thread (one clip at a
time); ``GET /api/videos/{id}`` reads the job's :class:`Job` fields, which the progress
callback updates; ``GET /api/videos/{id}/result`` sends the MP4 once, then drops it.

The job takes the photo route's options (``sdk.wire.StyleRequest``), ``scale``, a fixed ``mask``
(one image for every frame, read once) and ``outside`` included. A ``scale`` below 1 paints
each frame at more than its size: the clip's frame size is read from its header when the job
is started, and a scale that would make the network paint past the server's longest side
(``max_side``, as for photos) is refused at once (400), before any frame is decoded.

Bounds: at most ``max_jobs`` jobs exist at once (queued, running, or finished and not yet
fetched or expired); the next is refused with 503 (``BusyError``). A finished job is kept
``ttl`` seconds. Files: the clip is deleted as soon as its job ends (whatever the outcome), the
result on download, on expiry or when the app stops; ``stylize_video`` itself leaves no
partial file. Job ids are random (``secrets.token_urlsafe``), dictionary keys only: never a
path. Errors shown to the client never name a file of the server.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sdk import imaging, wire
from sdk.errors import BusyError, ImageTooLargeError, StylekitError
from sdk.web.guard import INTERNAL_ERROR, error_body

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]

#: Why a TorchServe backend has no video: frames through TorchServe would be one HTTP round trip each.
VIDEO_NEEDS_LOCAL = ("Video and the live camera need the local engine: this server sends styles to "
                     "TorchServe, which stylizes photos only. Run 'stylekit web' without --server for them.")


class _Cancelled(Exception):
    """Raised by the progress callback when the app stops: ends ``stylize_video`` early."""


@dataclass
class Job:
    """One clip's job; the worker thread writes its fields, requests read them."""

    id: str
    name: str  # the uploaded file's name, for the download name and messages
    style: wire.StyleChoice
    painting_name: str | None
    source: Path
    output: Path
    state: JobState = "queued"
    frames_done: int = 0
    frames_total: int | None = None
    fps: float = 0.0
    eta_s: float | None = None
    # The JSON error body (``{error, message, status}``) of a failed job.
    error: dict[str, object] | None = None
    finished_at: float | None = None
    created_at: float = field(default_factory=time.monotonic)


class VideoJobs:
    """The jobs of one app instance, their private temp folder, and the one worker lock."""

    def __init__(self, *, max_jobs: int, max_frames: int, ttl: float, max_side: int | None = None) -> None:
        self.max_jobs, self.max_frames, self.ttl = max_jobs, max_frames, ttl
        # The longest side the network may paint at (WebSettings.max_side); None: the request's
        # own max_side, which the app always sets and caps by it.
        self.max_side = max_side
        self.jobs: dict[str, Job] = {}
        self._folder: Path | None = None
        self._lock = threading.Lock()  # guards ``jobs`` and the folder
        # One clip at a time: the network already uses every core.
        self._worker = threading.Semaphore(1)
        self._stopping = threading.Event()

    @property
    def folder(self) -> Path:
        """This app's temp folder (mode 0700, made on first use)."""
        with self._lock:
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="stylekit-web-"))
                # Removed when the app stops (close), or at the latest when this object or the
                # interpreter goes away.
                weakref.finalize(self, shutil.rmtree, self._folder, True)
            return self._folder

    def admit(self) -> str:
        """Reserve a job id, or refuse (503) when ``max_jobs`` jobs exist; expired ones go first."""
        self.sweep()
        with self._lock:
            if len(self.jobs) >= self.max_jobs:
                raise BusyError("The server is busy with other videos; try again in a moment.")
            job_id = secrets.token_urlsafe(16)
            # A placeholder keeps the slot while the upload is read; start() fills it in.
            self.jobs[job_id] = Job(job_id, "", "", None, Path(os.devnull), Path(os.devnull))
            return job_id

    def cancel_admission(self, job_id: str) -> None:
        with self._lock:
            self.jobs.pop(job_id, None)

    def start(self, job_id: str, clip: bytes, name: str, request: wire.StyleRequest, temporal: float,
              painting_name: str | None, device: str) -> Job:  # fmt: skip
        """Write the clip and start its worker thread (the request's style and ``outside`` are
        canonical). A ``scale`` that would paint past the longest side is refused here."""
        assert request.style is not None
        fd, source = tempfile.mkstemp(suffix=".clip", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(clip)
            self._check_work_side(Path(source), request)
        except BaseException:
            Path(source).unlink(missing_ok=True)
            raise
        job = Job(job_id, name, request.style, painting_name, Path(source), Path(source).with_suffix(".mp4"))
        with self._lock:
            self.jobs[job_id] = job
        worker = threading.Thread(target=self._run, args=(job, request, temporal, device),
                                  name=f"video-{job_id[:6]}", daemon=True)  # fmt: skip
        worker.start()
        return job

    def _check_work_side(self, source: Path, request: wire.StyleRequest) -> None:
        """Below 1, ``scale`` enlarges what the network paints: hold it to the longest side, as
        the photo route does, from the frame size in the clip's header (an unreadable clip is
        left to ``stylize_video``, which says what is wrong with it)."""
        if request.scale >= 1.0:
            return
        limit = self.max_side or request.max_side
        size = _frame_size(source)
        if limit is None or size is None:
            return
        longest = max(size)
        if request.max_side is not None:
            longest = min(longest, request.max_side)  # frames are only ever shrunk to max_side
        imaging.check_scale_side(longest, request.scale, limit, "this clip's frames")

    def _run(self, job: Job, request: wire.StyleRequest, temporal: float, device: str) -> None:
        from sdk.video import VideoProgress, stylize_video

        def progress(p: VideoProgress) -> None:
            if self._stopping.is_set():
                raise _Cancelled
            job.frames_total = p.total
            longest = max(p.done, p.total or 0)
            if longest > self.max_frames:
                raise ImageTooLargeError(f"The clip has {longest} frames or more; this server stylizes at "
                                         f"most {self.max_frames} frames per clip.")  # fmt: skip
            job.frames_done, job.fps, job.eta_s = p.done, p.frames_per_second, p.eta_seconds

        try:
            with self._worker:
                job.state = "running"
                assert request.style is not None
                stylize_video(job.source, job.output, request.style, style_image=request.style_image,
                              strength=request.strength, preserve_color=request.preserve_color,
                              max_side=request.max_side, temporal=temporal, scale=request.scale,
                              mask=request.mask, outside=request.outside, device=device,
                              progress=progress)  # fmt: skip
            job.frames_total = job.frames_done
            job.eta_s = 0.0
            job.state = "done"
        except _Cancelled:
            job.state = "failed"
        except StylekitError as exc:
            _, body, _ = error_body(exc, remote=False)
            body["message"] = self._public(str(body["message"]), job)
            job.error, job.state = body, "failed"
            log.info("video %s failed: %s", job.id[:6], body["message"])
        except Exception:
            log.exception("video %s failed", job.id[:6])
            job.error = {"error": "internal_error", "message": INTERNAL_ERROR, "status": 500}
            job.state = "failed"
        finally:
            job.source.unlink(missing_ok=True)
            if job.state != "done":
                job.output.unlink(missing_ok=True)
            job.finished_at = time.monotonic()

    def _public(self, message: str, job: Job) -> str:
        """An error of ``stylize_video`` as the client may see it: the upload's name for the temp
        file, and no word of where the server keeps its files."""
        message = message.replace(f" Nothing was written to {job.output}.", "")
        message = message.replace(str(job.source), job.name).replace(str(job.output), "the result")
        return message.replace(str(self.folder), "")

    def get(self, job_id: str) -> Job | None:
        self.sweep()
        job = self.jobs.get(job_id)
        return job if job is not None and job.name else None  # placeholders are not jobs yet

    def drop(self, job_id: str) -> None:
        """Forget a job and delete its files."""
        with self._lock:
            job = self.jobs.pop(job_id, None)
        if job is not None and job.name and job.finished_at is not None:
            job.output.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Drop finished jobs older than ``ttl`` seconds."""
        now = time.monotonic()
        jobs = list(self.jobs.values())
        expired = [j.id for j in jobs if j.finished_at is not None and now - j.finished_at > self.ttl]
        for job_id in expired:
            self.drop(job_id)

    def close(self) -> None:
        """Stop the running job at its next frame and delete the temp folder."""
        self._stopping.set()
        with self._lock:
            folder, self._folder = self._folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def _frame_size(source: Path) -> tuple[int, int] | None:
    """The (width, height) of a clip's frames as its header states them, or None if unknown."""
    import av

    try:
        with av.open(str(source), "r") as container:
            if not container.streams.video:
                return None
            cc = container.streams.video[0].codec_context
            w, h = int(cc.width or 0), int(cc.height or 0)
    except av.FFmpegError:
        return None
    return (w, h) if w and h else None


__all__ = ["VIDEO_NEEDS_LOCAL", "Job", "JobState", "VideoJobs"]
