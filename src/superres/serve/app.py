"""The web page's server: a Starlette app over `superres.api`, for one person on this machine.

Uploads are checked as the command line checks its inputs (size limit, then
`superres.image.io.read_image` with its decompression-bomb guard and one-line
`ImageReadError`); the client's file name is only ever shown or offered as the download's
name, never used as a path. Every file lives in one temporary folder, removed at shutdown.
The work runs in worker threads, so the page keeps answering, and one job at a time per
model (a lock each), queued jobs waiting their turn; the page polls a job for its state.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import warnings
import webbrowser
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Literal

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive

from superres.api import list_models, load, model_row
from superres.image.io import ImageReadError, Picture, read_image, write_image
from superres.inference.upscaler import Upscaler
from superres.models import default_model
from superres.weights import shipped_weights

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 50 * 2**20
# Input pixels: below the CLI's limit, since every upload is kept as a PNG and its result
# (x4: 16x the pixels) is shown in a browser; 2**24 is a 16-megapixel photo.
MAX_PIXELS = 2**24
MAX_JOBS = 8  # jobs kept (their images on disk); past it the oldest finished one goes
DEFAULT_TILE = 512  # the CLI's default; the page's too
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
BENCHMARKS = ("Set5", "Set14")
# Minutes per image (docs/benchmarks.md): a study model, kept to the command line.
COMMAND_LINE_ONLY = frozenset({"sparse-coding"})
# LR pixels a side of the image timed to measure a model's speed: on smaller ones the fixed
# cost of a call dominates (FSRCNN x2: 13 s per megapixel on 64x64, 3-6 on 128x128 to 512x512)
_CALIBRATION_SIDE = 128
_FORM_OVERHEAD = 64 * 2**10  # multipart headers and the small fields, beyond the file
_CONTENT_SECURITY = ("default-src 'self'; img-src 'self' blob:; style-src 'self'; "
                     "script-src 'self'; object-src 'none'; base-uri 'none'; "
                     "frame-ancestors 'none'")

log = logging.getLogger(__name__)
State = Literal["queued", "running", "done", "failed"]


class UploadTooLarge(Exception):
    """The request body went past the upload limit while it was being read."""


class Busy(Exception):
    """As many jobs as the server keeps are still waiting or running."""


@dataclass(eq=False)
class Job:
    """One upscaling: its options, where its files are, and how far it got."""

    id: str
    folder: Path
    name: str  # the client's file name, made safe: for messages and the download's name
    model: str
    scale: int
    tile: int | None
    tta: bool
    picture: Picture | None  # the decoded upload, until the job is done
    width: int
    height: int
    state: State = "queued"
    error: str = ""
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None  # the upscaling itself, once done

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def download_name(self) -> str:
        return f"{PurePosixPath(self.name).stem or 'image'}_x{self.scale}.png"


@cache
def catalog() -> dict[str, dict[str, Any]]:
    """The models the page offers, by name: interpolation and every network at the scales
    it has shipped weights for, each scale with its benchmark quality (the zoo's scores of
    the shipped weights, else the paper's) and parameter count, from the rows of
    `superres models`. Cached: counting parameters builds the models."""
    # only scores by the standard protocol compare with the papers' and each other's
    zoo = {(w.model, w.scale): w.scores if w.clean else {} for w in shipped_weights()}
    offered = {}
    for spec in list_models():
        scales = [s for s in spec.scales if not spec.learned or (spec.name, s) in zoo]
        # a video model on a still is its single-frame part: the page is for images
        if (spec.trains_at_test_time or spec.name in COMMAND_LINE_ONLY or spec.frames > 1
                or not scales):
            continue
        row = model_row(spec)
        offered[spec.name] = {
            "name": spec.name,
            "summary": spec.summary,
            "learned": spec.learned,
            "scales": scales,
            "params": {str(s): row["params"][str(s)] for s in scales},
            "quality": {str(s): _quality(zoo.get((spec.name, s)), row["reference"], s)
                        for s in scales},
        }
    return offered


def _quality(measured: dict[str, list[float]] | None, reference: dict[str, Any],
             scale: int) -> dict[str, Any] | None:
    """PSNR/SSIM on Set5 and Set14 at `scale`, and whether superres measured them."""
    if measured and any(name in measured for name in BENCHMARKS):
        scores, source = measured, "measured"
    else:
        scores = {name: by_scale[str(scale)] for name, by_scale in reference.items()
                  if str(scale) in by_scale}
        source = "paper"
    found = {name: scores[name] for name in BENCHMARKS if name in scores}
    return {"source": source, **found} if found else None


@lru_cache(maxsize=4)
def _upscaler(model: str, scale: int, tile: int | None, tta: bool) -> Upscaler:
    """A loaded model, kept for the next job: loading checks and reads the weights."""
    return load(model, scale, tile=tile, tta=tta)


def _receive(upload: BinaryIO, folder: Path, max_pixels: int) -> Picture:
    """Save the upload under our own name, decode it with the CLI's checked reader, and keep
    a PNG of it for the page (browsers show no TIFF, and EXIF orientation is now applied)."""
    source = folder / "upload"
    with source.open("wb") as out:
        shutil.copyfileobj(upload, out)
    picture = read_image(source, max_pixels=max_pixels)
    source.unlink()
    write_image(folder / "before.png", picture)
    return picture


def _upscale(job: Job) -> float:
    """Upscale the job's picture into result.png (lossless, bit depth and alpha kept);
    the seconds the upscaling took."""
    assert job.picture is not None
    upscaler = _upscaler(job.model, job.scale, job.tile, job.tta)
    begin = time.perf_counter()
    result = upscaler.upscale_picture(job.picture)
    seconds = time.perf_counter() - begin
    write_image(job.folder / "result.png", result)
    return seconds


def _measure_speed(model: str, scale: int) -> float:
    """Seconds per LR megapixel of a model on this machine, timed on a small noise image
    after a first call (which sets up the kernels), so that the page can show it before one
    chooses and estimate a job's progress."""
    upscaler = _upscaler(model, scale, DEFAULT_TILE, False)
    side = _CALIBRATION_SIDE
    lr = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    upscaler.upscale(lr[:16, :16])
    begin = time.perf_counter()
    upscaler.upscale(lr)
    return (time.perf_counter() - begin) / (side * side / 1e6)


class Studio:
    """The server's state: the jobs, their temporary folder, a lock per model and the
    speeds measured here."""

    def __init__(self, max_upload_bytes: int, max_pixels: int, max_jobs: int) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.max_pixels = max_pixels
        self.max_jobs = max_jobs
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.speeds: dict[tuple[str, int], float] = {}  # seconds per LR megapixel
        self.workdir: Path | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        """The temporary folder lives as long as the server; jobs still queued are dropped
        and running ones finished before it is removed."""
        self.workdir = Path(tempfile.mkdtemp(prefix="superres-serve-"))
        await run_in_threadpool(catalog)  # now, not on the event loop at the first request
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def lock(self, model: str) -> asyncio.Lock:
        return self._locks.setdefault(model, asyncio.Lock())

    def model_and_scale(self, fields: Mapping[str, Any]) -> tuple[str, int]:
        """The model and scale a request names, checked against what the page offers."""
        name = str(fields.get("model", ""))
        row = catalog().get(name)
        if row is None:
            raise ValueError(f"unknown model {name!r}")
        scale = _whole_number(fields.get("scale"), "scale")
        if scale not in row["scales"]:
            offered = ", ".join(f"x{s}" for s in row["scales"])
            raise ValueError(f"{name} upscales {offered} here, not x{scale}")
        return name, scale

    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its folder inside the temporary folder."""
        if self.workdir is None:
            raise RuntimeError("the server has not started")
        if sum(job.active for job in self.jobs.values()) >= self.max_jobs:
            raise Busy(f"busy: {self.max_jobs} jobs are waiting; try again when one ends")
        job_id = uuid.uuid4().hex
        folder = self.workdir / job_id
        folder.mkdir()
        return job_id, folder

    def start(self, job: Job) -> None:
        """Queue the job behind its model's lock and forget the oldest finished ones."""
        self.jobs[job.id] = job
        finished = [j for j in self.jobs.values() if not j.active]
        for old in finished[: max(0, len(self.jobs) - self.max_jobs)]:
            del self.jobs[old.id]
            shutil.rmtree(old.folder, ignore_errors=True)
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        async with self.lock(job.model):
            job.state, job.started = "running", time.monotonic()
            try:
                job.seconds = await run_in_threadpool(_upscale, job)
            except Exception as err:  # the server stays up; the page shows why the job failed
                log.exception("job %s (%s) failed", job.id, job.name)
                job.state, job.error = "failed", f"{job.name}: {' '.join(str(err).split())}"
                return
            finally:
                job.picture, job.ended = None, time.monotonic()
            job.state = "done"
            if not job.tta and job.width * job.height >= _CALIBRATION_SIDE**2:
                self.speeds[job.model, job.scale] = job.seconds / (job.width * job.height / 1e6)

    def describe(self, job: Job) -> dict[str, Any]:
        """What the page polls: the job's state, its time so far and the time expected."""
        speed = self.speeds.get((job.model, job.scale))
        estimate = speed * job.width * job.height / 1e6 * (8 if job.tta else 1) if speed else None
        if job.seconds is not None:
            elapsed = job.seconds
        elif job.started is not None:
            elapsed = (job.ended or time.monotonic()) - job.started
        else:
            elapsed = 0.0
        ahead = sum(other.active and other.model == job.model and other.created < job.created
                    for other in self.jobs.values())
        return {
            "id": job.id, "state": job.state, "error": job.error, "name": job.name,
            "model": job.model, "scale": job.scale, "tile": job.tile or 0, "tta": job.tta,
            "width": job.width, "height": job.height,
            "out_width": job.width * job.scale, "out_height": job.height * job.scale,
            "ahead": ahead if job.state == "queued" else 0,
            "elapsed": elapsed, "estimate": estimate,
            "download": job.download_name,
        }


# ----------------------------------------------------------------------------- endpoints


def _studio(request: Request) -> Studio:
    return request.app.state.studio


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _whole_number(value: Any, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} must be a whole number, not {value!r}") from None


def _client_name(filename: str | None) -> str:
    """The client's file name for messages and the download: its last part, with anything
    but letters, digits, '.', '-' and '_' replaced. Never a path on this machine."""
    last = PurePosixPath((filename or "").replace("\\", "/")).name
    return re.sub(r"[^\w.-]+", "_", last).strip("._")[-100:] or "image"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive`, raising UploadTooLarge once the body passes `limit` bytes: a request
    without Content-Length (chunked) is cut off as it streams, not after."""
    total = 0

    async def limited() -> Message:
        nonlocal total
        message = await receive()
        if message["type"] == "http.request":
            total += len(message.get("body", b""))
            if total > limit:
                raise UploadTooLarge
        return message

    return limited


async def index(_: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={
        "Content-Security-Policy": _CONTENT_SECURITY, "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})


async def models(request: Request) -> Response:
    """The page's choices: models with their quality and measured speed, scales, defaults
    and the upload limits."""
    studio = _studio(request)
    offered = catalog()
    scales = sorted({s for row in offered.values() for s in row["scales"]})
    rows = [{**row, "speed": {str(s): studio.speeds.get((name, s)) for s in row["scales"]}}
            for name, row in offered.items()]
    return JSONResponse({
        "models": rows, "scales": scales,
        "defaults": {str(s): default_model(s).name for s in scales},
        "default_scale": 4, "default_tile": DEFAULT_TILE,
        "limits": {"bytes": studio.max_upload_bytes, "pixels": studio.max_pixels},
    })


async def speed(request: Request) -> Response:
    """A model's speed on this machine, measured once (under the model's lock)."""
    studio = _studio(request)
    try:
        model, scale = studio.model_and_scale(request.query_params)
    except ValueError as err:
        return _error(400, str(err))
    if (model, scale) not in studio.speeds:
        async with studio.lock(model):
            if (model, scale) not in studio.speeds:
                try:
                    seconds = await run_in_threadpool(_measure_speed, model, scale)
                except (ValueError, OSError) as err:  # missing or corrupt weights
                    return _error(500, f"{model} x{scale}: {err}")
                studio.speeds[model, scale] = seconds
    return JSONResponse({"model": model, "scale": scale,
                         "seconds_per_megapixel": studio.speeds[model, scale]})


async def submit(request: Request) -> Response:
    """Take an upload (multipart: file, model, scale, tile, tta), check and decode it, and
    queue its job: 202 with the job, or a one-line error."""
    studio = _studio(request)
    limit = studio.max_upload_bytes
    over = f"over the limit of {_megabytes(limit)}"
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + _FORM_OVERHEAD:
        return _error(413, f"upload is {_megabytes(int(length))}, {over}")
    bounded = Request(request.scope, _limited(request.receive, limit + _FORM_OVERHEAD))
    try:
        async with bounded.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                return _error(400, "no image in the upload (form field 'file')")
            name = _client_name(upload.filename)
            if upload.size is not None and upload.size > limit:
                return _error(413, f"{name}: {_megabytes(upload.size)}, {over}")
            try:
                model, scale = studio.model_and_scale(form)
                tile = _whole_number(form.get("tile", DEFAULT_TILE), "tile")
                if tile < 0:
                    raise ValueError(f"tile must be 0 (whole image) or more, not {tile}")
                job_id, folder = studio.new_folder()
            except ValueError as err:
                return _error(400, str(err))
            except Busy as err:
                return _error(503, str(err))
            try:
                picture = await run_in_threadpool(_receive, upload.file, folder,
                                                  studio.max_pixels)
            except ImageReadError as err:
                shutil.rmtree(folder, ignore_errors=True)
                return _error(400, f"{name}: {err.reason}")
            except OSError as err:  # the temporary folder's disk, not the file
                shutil.rmtree(folder, ignore_errors=True)
                return _error(500, f"{name}: cannot keep the upload: {err.strerror or err}")
            tta = str(form.get("tta", "")).lower() in ("1", "true", "on")
    except UploadTooLarge:
        return _error(413, f"upload {over}")
    job = Job(id=job_id, folder=folder, name=name, model=model, scale=scale,
              tile=tile or None, tta=tta, picture=picture, width=picture.width,
              height=picture.height)
    studio.start(job)
    return JSONResponse(studio.describe(job), status_code=202)


def _job(request: Request) -> Job | None:
    return _studio(request).jobs.get(request.path_params["job"])


async def job_state(request: Request) -> Response:
    job = _job(request)
    if job is None:
        return _error(404, "no such job (jobs past the last few are forgotten)")
    return JSONResponse(_studio(request).describe(job), headers={"Cache-Control": "no-store"})


async def job_image(request: Request) -> Response:
    """The decoded upload (before.png) or the result (result.png; `?download=1` to save it
    under the upload's name with the scale)."""
    job = _job(request)
    if job is None:
        return _error(404, "no such job (jobs past the last few are forgotten)")
    which = request.path_params["image"]
    if which not in ("before.png", "result.png"):
        return _error(404, f"a job has before.png and result.png, not {which!r}")
    if which == "result.png" and job.state != "done":
        return _error(409, f"the job is {job.state}, there is no result")
    download = which == "result.png" and request.query_params.get("download") == "1"
    return FileResponse(job.folder / which, media_type="image/png",
                        filename=job.download_name if download else None,
                        content_disposition_type="attachment" if download else "inline",
                        headers={"Cache-Control": "no-store"})


def create_app(*, max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS,
               max_jobs: int = MAX_JOBS,
               allowed_hosts: Sequence[str] = LOOPBACK_HOSTS) -> Starlette:
    """The page's app. `allowed_hosts` are the Host headers answered: the loopback names by
    default, so that a web site cannot reach the server through DNS rebinding."""
    studio = Studio(max_upload_bytes, max_pixels, max_jobs)
    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/speed", speed),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs/{job:str}", job_state),
        Route("/api/jobs/{job:str}/{image:str}", job_image),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=studio.lifespan,
                    middleware=[Middleware(TrustedHostMiddleware,
                                           allowed_hosts=list(allowed_hosts))])
    app.state.studio = studio
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    """Serve the page until interrupted. Loopback by default: the page has no login, so on
    another address anyone who reaches it can use this machine."""
    local = host in ("127.0.0.1", "localhost", "::1")
    if not local:
        warnings.warn(f"serving on {host}: the page has no login; anyone who can reach this "
                      "address can use it", stacklevel=2)
    # bound here, not by uvicorn, so that a port in use is an OSError to report, not an exit
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    with listener:
        listener.bind((host, port))
        app = create_app(allowed_hosts=LOOPBACK_HOSTS if local else ["*"])
        server = uvicorn.Server(uvicorn.Config(app, access_log=False))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{f'[{shown}]' if ':' in shown else shown}:{listener.getsockname()[1]}/"
        threading.Thread(target=_announce, args=(server, url, open_browser), daemon=True).start()
        server.run(sockets=[listener])


def _announce(server: uvicorn.Server, url: str, open_browser: bool) -> None:
    """Say where the page is, and open it, once the server answers (not before: the
    browser would find nothing)."""
    while not server.started and not server.should_exit:
        time.sleep(0.1)
    if server.started:
        print(f"superres serve: {url} (Ctrl+C to stop)", flush=True)
        if open_browser:
            webbrowser.open(url)
