"""`emomon serve --ray`: many live cameras on a Ray cluster.

- The emotion model is a Ray Serve deployment (`serve_model.EmotionModelServer`, replicas from flags) that
  batches the requests of all cameras (`@serve.batch`).
- Each camera has an ingest actor (`CameraIngest`): its source -> the detector and tracker -> requests to the
  model deployment -> its JSONL (and CSV), through `emomon.pipeline.run_pipeline`, so the records, the
  reconnects and the lost/restored events are those of `emomon run`.
- This process supervises: a camera whose run fails (its stream gave up, its actor died) is logged and started
  again in a fresh actor after a growing wait, and its earlier output is kept beside the new one; the other
  cameras never notice. A camera reading a file that ends is finished, not restarted.
- A small HTTP server here answers `GET /status` (per camera: state, frames/s, persons, drops, reconnects,
  restarts, last error; the model's batching) and `GET /health` (200 while no camera is failing, else 503 and
  the failing ones: a camera is failing while it waits for a restart, and after one until its first frame).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

from emomon.cluster.cameras import CameraConfig
from emomon.cluster.config import ServeConfig, WorkerConfig
from emomon.cluster.ray_support import actor_died_errors, connect, import_serve
from emomon.kernel import InputError, file_stamp, first_line, utc_iso, utc_now

log = logging.getLogger(__name__)

APP_NAME = "emomon-model"


class RemotePredictor:
    """Stands in for `fusion.Predictor` inside an ingest actor: the pipeline's emotion calls become requests to
    the model deployment (which batches them with other cameras'); detection and tracking stay local."""

    def __init__(self, handle, info: dict):
        self.handle = handle
        self.model = SimpleNamespace(labels=info["labels"], name=info.get("model"))
        self.backend = SimpleNamespace(name=f"ray-serve:{info['backend']}", precision=info["precision"])
        self.keep_features = False
        self.nonfinite = 0

    def encode_scene(self, frames: list):
        return [self.handle.encode_scene.remote(frame).result() for frame in frames]

    def predict(self, frame, boxes=None, scene_embedding=None):
        return self.handle.predict.remote((frame, boxes, scene_embedding)).result()


class _StopCamera(Exception):
    """Raised from the frame callback when the supervisor asks a camera to stop: the runner closes its files."""


@dataclass
class CameraState:
    """What a camera's ingest actor reports (the status endpoint's per-camera entry, with the supervisor's)."""

    state: str = "starting"       # starting | running | lost | finished | failed | restarting | stopped
    frames: int = 0
    fps: float = 0.0
    persons: int = 0
    drops: int = 0
    reconnects: int = 0
    last_error: str | None = None
    last_frame_utc: str | None = None


class CameraIngest:
    """One camera: its source, detector and tracker in this actor; emotions from the model deployment."""

    def __init__(self, camera: CameraConfig, monitor_config, source_config, handle, info: dict,
                 fps_window_s: float = 10.0, threads: int | None = None):
        self.camera, self.source_config = camera, source_config
        self.status_ = CameraState()
        self.pipeline, self.error = None, None
        try:  # a failure here is said by run() in one line (an actor's creation error is a long traceback)
            if threads:
                import torch

                torch.set_num_threads(threads)
            from emomon.pipeline import build_pipeline

            self.pipeline = build_pipeline(monitor_config, predictor=RemotePredictor(handle, info))
        except Exception as exc:  # noqa: BLE001
            self.error = str(exc) if isinstance(exc, InputError) else first_line(exc)
        self.window = fps_window_s
        self.times: deque[float] = deque()
        self.source = None
        self._stop = threading.Event()

    def run(self) -> dict:
        """Until the source ends (a file), the camera is stopped, or the source fails for good (raised)."""
        import dataclasses

        from emomon.pipeline import OutputPaths, RunReport, run_pipeline
        from stream import open_source

        cam = self.camera
        config = self.source_config
        if cam.reconnect_attempts is not None:
            config = dataclasses.replace(config, reconnect_attempts=cam.reconnect_attempts)
        report = RunReport()
        try:
            if self.pipeline is None:
                raise InputError(f"the camera's models could not be loaded: {self.error}")
            self.source = open_source(cam.source, vid_stride=cam.vid_stride, config=config)
            self.status_.state = "running"
            with self.source:
                run_pipeline(_Observed(self.source, self), self.pipeline, OutputPaths(jsonl=cam.output, csv=cam.csv),
                             progress=False, on_frame=self._on_frame, report=report)
            self.status_.state = "finished"
        except _StopCamera:
            self.status_.state = "stopped"
        except Exception as exc:
            self.status_.state = "failed"
            self.status_.last_error = str(exc) if isinstance(exc, InputError) else first_line(exc)
            raise
        return {"frames": report.frames, "persons": report.persons, "stopped_by": report.stopped_by}

    def _on_frame(self, result) -> None:
        now = time.monotonic()
        self.times.append(now)
        while self.times and self.times[0] < now - self.window:
            self.times.popleft()
        s = self.status_
        s.frames += 1
        s.persons = len(result.persons)
        s.last_frame_utc = utc_iso(result.utc or utc_now())
        s.state = "running"
        if self._stop.is_set():
            raise _StopCamera

    def event(self, event) -> None:
        """A lost/restored event of the source (seen on its way to the JSONL)."""
        if event.kind == "stream_lost":
            self.status_.state = "lost"
            self.status_.last_error = f"stream lost: {event.reason}" if event.reason else "stream lost"
        else:
            self.status_.state = "running"
            self.status_.reconnects += 1

    def status(self) -> dict:
        now = time.monotonic()
        recent = [t for t in self.times if t >= now - self.window]
        span = now - recent[0] if recent else 0.0
        self.status_.fps = round((len(recent) - 1) / span, 2) if len(recent) > 1 and span > 0 else 0.0
        self.status_.drops = int(getattr(self.source, "dropped", 0) or 0)
        return asdict(self.status_)

    def stop(self) -> None:
        self._stop.set()


class _Observed:
    """The camera's source as the runner sees it, with its lost/restored events also told to the actor."""

    def __init__(self, source, ingest: CameraIngest):
        self._source, self._ingest = source, ingest

    def __getattr__(self, name):
        return getattr(self._source, name)

    def __iter__(self):
        return iter(self._source)

    def with_events(self):
        inner = getattr(self._source, "with_events", None)
        for item in (inner() if inner is not None else self._source):
            if not hasattr(item, "image"):
                self._ingest.event(item)
            yield item


@dataclass
class _Camera:
    """The supervisor's view of one camera."""

    config: CameraConfig
    actor: object = None
    ref: object = None
    state: str = "starting"
    restarts: int = 0
    last_error: str | None = None
    next_start: float = 0.0
    history: list = field(default_factory=list)  # (utc, event) of failures and restarts


class Supervisor:
    """Starts each camera's actor, restarts a failed one with a growing wait, answers for their status."""

    def __init__(self, ray, cameras: list[CameraConfig], make_actor, config: ServeConfig):
        self.ray, self.make_actor, self.config = ray, make_actor, config
        self.died = actor_died_errors(ray)
        self.cameras = {c.name: _Camera(c) for c in cameras}
        self.lock = threading.Lock()

    def start(self, cam: _Camera) -> None:
        if cam.restarts:
            _keep_earlier_output(cam.config)
        cam.actor = self.make_actor(cam.config, cam.restarts)
        cam.ref = cam.actor.run.remote()
        cam.state = "starting"  # the actor says "running" from its first frame

    def poll(self, timeout_s: float = 0.5) -> None:
        now = time.monotonic()
        with self.lock:
            for cam in self.cameras.values():
                if cam.ref is None and cam.state in ("starting", "restarting") and now >= cam.next_start:
                    self.start(cam)
            refs = {cam.ref: cam for cam in self.cameras.values() if cam.ref is not None}
        if not refs:
            time.sleep(timeout_s)
            return
        ready, _ = self.ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        for ref in ready:
            self._ended(refs[ref], ref)

    def _ended(self, cam: _Camera, ref) -> None:
        with self.lock:
            cam.ref = None
            try:
                result = self.ray.get(ref)
                if self._is_file(cam.config):
                    cam.state = "finished"
                    log.info("camera %s: its file ended after %d frames", cam.config.name, result["frames"])
                    self._release(cam)
                    return
                reason = f"the stream ended ({result['stopped_by']})"
            except self.died as exc:
                reason = f"its actor died: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}"
            except Exception as exc:  # noqa: BLE001 - the camera's failure; the others go on
                cause = getattr(exc, "cause", None) or exc
                reason = str(cause) if isinstance(cause, InputError) else first_line(cause)
            self._release(cam)
            cam.restarts += 1
            cam.last_error = reason
            delay = min(self.config.restart_delay_s * 2 ** min(cam.restarts - 1, 16), self.config.restart_max_delay_s)
            cam.next_start = time.monotonic() + delay
            cam.state = "restarting"
            cam.history = cam.history[-19:] + [(utc_iso(utc_now()), f"failed: {reason}; restart in {delay:g} s")]
            log.warning("camera %s failed: %s; restarting it in %g s (restart %d)", cam.config.name, reason, delay,
                        cam.restarts)

    def _release(self, cam: _Camera) -> None:
        if cam.actor is not None:
            with contextlib.suppress(Exception):  # already gone, or dying: its task says so
                self.ray.kill(cam.actor, no_restart=True)
        cam.actor = None

    @staticmethod
    def _is_file(camera: CameraConfig) -> bool:
        """A file (or a remote video file) ends; a live camera that ends has failed and is restarted."""
        from stream import detect_kind, is_live

        return not is_live(detect_kind(camera.source))

    def active(self) -> bool:
        return any(cam.state not in ("finished",) for cam in self.cameras.values())

    def status(self) -> dict:
        with self.lock:
            cams = list(self.cameras.values())
        asks = {cam.config.name: cam.actor.status.remote() for cam in cams if cam.actor is not None}
        answers = {}
        if asks:
            done, _ = self.ray.wait(list(asks.values()), num_returns=len(asks), timeout=2.0)
            for name, ref in asks.items():
                if ref in done:
                    with contextlib.suppress(Exception):  # already gone, or dying: its task says so
                        answers[name] = self.ray.get(ref)
        out = {}
        for cam in cams:
            entry = answers.get(cam.config.name, {})
            state = entry.get("state", cam.state) if cam.state not in ("restarting", "finished") else cam.state
            out[cam.config.name] = {
                **asdict(CameraState()), **entry, "state": state, "source": _redacted(cam.config.source),
                "output": cam.config.output, "restarts": cam.restarts,
                "last_error": entry.get("last_error") or cam.last_error, "history": cam.history}
            if cam.state in ("restarting", "finished"):
                out[cam.config.name]["fps"] = 0.0
            # failing: waiting to restart, or restarted and no frame since (a camera still away)
            out[cam.config.name]["healthy"] = not (
                state in ("restarting", "failed") or cam.restarts and not entry.get("frames"))
        return out

    def stop(self, grace_s: float = 5.0) -> None:
        with self.lock:
            cams = [c for c in self.cameras.values() if c.actor is not None]
        for cam in cams:
            with contextlib.suppress(Exception):  # already gone, or dying: its task says so
                cam.actor.stop.remote()
        refs = [c.ref for c in cams if c.ref is not None]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=grace_s)
        for cam in cams:
            self._release(cam)
            cam.state = "stopped" if cam.state != "finished" else cam.state


def _redacted(source: str) -> str:
    from stream.kinds import redact_url

    return redact_url(source) if "://" in source else source


def _keep_earlier_output(camera: CameraConfig) -> None:
    """A restarted camera writes its files afresh; the earlier run's are kept as NAME.STAMP.SUFFIX."""
    for path in (camera.output, camera.csv):
        if path and Path(path).is_file() and Path(path).stat().st_size:
            p = Path(path)
            kept = p.with_name(f"{p.stem}.{file_stamp(utc_now())}{p.suffix}")
            n = 1
            while kept.exists():
                kept = p.with_name(f"{p.stem}.{file_stamp(utc_now())}-{n}{p.suffix}")
                n += 1
            os.replace(p, kept)
            log.info("camera %s: its earlier output is kept as %s", camera.name, kept)


def _deployment_error(exc: Exception) -> Exception:
    """A replica that could not load the model fails `serve.run` with its traceback in the message: a bad model
    or flag (our InputError there) becomes the user's one-line error; anything else stays our bug."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        for marker in ("InputError: ", "SourceError: "):
            if marker in line:
                return InputError(f"the model deployment could not start: {line.split(marker, 1)[1]}")
    return exc


class StatusServer:
    """GET /status (JSON of every camera and the model) and GET /health (200 or 503) on `host:port`."""

    def __init__(self, host: str, port: int, status):
        self.status = status

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N802, N805 - http.server's names
                path = handler.path.split("?")[0].rstrip("/")
                if path not in ("/status", "/health"):
                    handler.send_error(404, "GET /status or /health")
                    return
                data = self.status()
                code = 200
                if path == "/health":
                    failing = sorted(n for n, c in data["cameras"].items() if not c["healthy"])
                    data = {"ok": not failing, "failing": failing}
                    code = 200 if not failing else 503
                body = json.dumps(data, allow_nan=False, default=str).encode()
                handler.send_response(code)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args):  # noqa: N805 - quiet: the status is polled
                pass

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise InputError(f"cannot serve the status endpoint on {host}:{port}: {exc.strerror or exc}") from None
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="emomon-status", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_cameras(cameras: list[CameraConfig], monitor_config, source_config, config: ServeConfig,
                  replica: WorkerConfig, camera_cpus: float, address: str | None = None,
                  stop: threading.Event | None = None) -> dict:
    """Run every camera until each has finished (file sources), the process is stopped (Ctrl-C, SIGTERM) or
    `stop` is set (a caller in another thread). Returns the last status."""
    if monitor_config.model.temporal_model:
        raise InputError("emomon serve --ray does not run --temporal-model yet (its head needs each track's "
                         "features on the model's side); use emomon run per camera")
    for cam in cameras:  # fail before the cluster starts: every output can be written
        from emomon.kernel.files import check_writable

        for path in (cam.output, cam.csv):
            if path:
                check_writable(path)
    ray = connect(address)
    serve = import_serve()
    from emomon.cluster.serve_model import EmotionModelServer

    serve.start(http_options={"location": "NoServer"})
    app = EmotionModelServer.options(
        num_replicas=config.replicas,
        ray_actor_options={"num_cpus": replica.num_cpus, "num_gpus": replica.num_gpus},
        max_ongoing_requests=max(16, 4 * config.max_batch_size)).bind(
        monitor_config.model, config.max_batch_size, config.batch_wait_s, max(1, int(replica.num_cpus)))
    log.info("starting the model deployment (%d replica(s), batches of up to %d)", config.replicas,
             config.max_batch_size)
    try:
        handle = serve.run(app, name=APP_NAME, route_prefix=None)
        info = handle.info.remote().result()
    except Exception as exc:
        raise _deployment_error(exc) from None
    ingest = ray.remote(num_cpus=camera_cpus, max_concurrency=4, max_restarts=0)(CameraIngest)

    def make_actor(camera: CameraConfig, generation: int):
        return ingest.options(name=f"emomon-camera-{camera.name}-{os.getpid()}.{generation}").remote(
            camera, monitor_config, source_config, handle, info, config.fps_window_s, max(1, int(camera_cpus)))

    supervisor = Supervisor(ray, cameras, make_actor, config)

    def status() -> dict:
        try:
            model = handle.stats.remote().result(timeout_s=2.0)
        except Exception as exc:  # noqa: BLE001 - the status says so instead of failing
            model = {"error": first_line(exc)}
        return {"utc": utc_iso(utc_now()), "cameras": supervisor.status(),
                "model": {**model, "replicas": config.replicas, "backend": info["backend"],
                          "precision": info["precision"]}}

    server = StatusServer(config.status_host, config.status_port, status)
    log.info("%d camera(s); status at %s/status, health at %s/health", len(cameras), server.url, server.url)
    from emomon.pipeline.interrupts import InterruptGuard

    last = {}
    try:
        with InterruptGuard():
            while supervisor.active() and not (stop is not None and stop.is_set()):
                supervisor.poll()
            if not supervisor.active():
                log.info("every camera's file has ended")
    finally:
        try:
            last = status()
        finally:
            supervisor.stop()
            server.close()
            try:
                serve.delete(APP_NAME)
            except Exception as exc:  # noqa: BLE001 - shutting down anyway
                log.debug("could not delete the model deployment: %s", exc)
    return last
