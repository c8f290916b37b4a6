"""The Gradio page: settings on the left; Webcam, Video and Image tabs; model banner on top.

Every handler turns bad input into a readable message in the page (`gr.Error` / `gr.Warning`), never a
stack trace, and the server keeps serving. Unexpected errors are logged with their traceback on the server
and shown as one line. Messages name uploads by their file name, never by the server folder holding them;
requests Gradio refuses before a handler runs (a file that was never uploaded) get one readable line too.
"""

from __future__ import annotations

import atexit
import functools
import logging
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pandas as pd
from gradio.exceptions import InvalidPathError
from PIL import Image, ImageOps

from emomon.kernel import InputError, first_line
from emomon.pipeline import EmotionOverlay, OverlayConfig, RunSummary
from emomon.webapp import views
from emomon.webapp.config import AppConfig, Settings
from emomon.webapp.engine import AppEngine
from emomon.webapp.video import process_video

log = logging.getLogger(__name__)

WEBCAM_MAX_SIDE = 640      # live frames are scaled down to this (the detector's input size) before processing
WEBCAM_GAP_S = 3.0         # a pause longer than this starts a new recording: fresh track ids and summary
STREAM_EVERY_S = 0.15      # how often the browser sends a frame; the server always takes the newest one
RUN_MAX_AGE_S = 3 * 3600   # video run folders older than this are deleted when a new run starts

INTRO = """<div style="display:flex;align-items:baseline;gap:14px;flex-wrap:wrap">
<span style="font-size:26px;font-weight:700">emomon</span>
<span style="font-size:15px;opacity:.8">per-person emotions in images, videos and your webcam: YOLO person
tracking + a two-stream emotion model (26 EMOTIC categories, valence / arousal / dominance on 1-10)</span></div>"""

WEBCAM_HELP = ("Click the camera area, allow camera access, then press the record button: every frame goes "
               "through person tracking and the emotion model, and the annotated frame appears on the right. "
               "Camera blocked? Allow it for this site in the browser's address bar (browsers offer cameras "
               "only on localhost or https pages).")


def read_upload(payload) -> np.ndarray:
    """An uploaded image (Gradio's raw file payload) as RGB, upright per EXIF; a readable error otherwise.

    The image events skip Gradio's own preprocessing so that an empty or non-image file becomes this
    message instead of a generic "Error".
    """
    if payload is None:
        raise gr.Error("No photo yet: upload a JPEG, PNG or WebP photo first.")
    data = payload if isinstance(payload, dict) else getattr(payload, "model_dump", lambda: {})()
    path, name = data.get("path"), data.get("orig_name") or "the upload"
    if not path:
        raise gr.Error("No photo yet: upload a JPEG, PNG or WebP photo first.")
    try:
        if Path(path).stat().st_size == 0:
            raise gr.Error(f"'{name}' is an empty file: upload a JPEG, PNG or WebP photo.")
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGB"))
    except gr.Error:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL (and Ultralytics' patch of it) raise many kinds for bad files
        log.info("unreadable image upload %s: %s", name, exc)
        raise gr.Error(f"'{name}' is not a readable image (empty or not an image file). "
                       "Upload a JPEG, PNG or WebP photo.") from None
    if rgb.ndim != 3 or min(rgb.shape[:2]) < 2:
        raise gr.Error(f"'{name}' is empty (no pixels).")
    return rgb


def server_folders() -> list[str]:
    """Where the server keeps uploads and results (Gradio's upload folder, the temp folder): never shown."""
    from gradio import utils

    upload = getattr(utils, "get_upload_folder", lambda: "")()
    return [upload, tempfile.gettempdir()]


def public(text: str) -> str:
    """`text` with server paths cut to their file names (see `views.hide_paths`)."""
    return views.hide_paths(text, server_folders())


def friendly(fn):
    """Handler errors as one readable line in the page; unexpected ones also go to the server log."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except InputError as exc:
            raise gr.Error(public(str(exc))) from None
        except Exception as exc:  # noqa: BLE001 - the page shows one line; the log keeps the traceback
            log.exception("error in %s", fn.__name__)
            raise gr.Error(public(f"Unexpected error: {type(exc).__name__}: {exc} (details in the server log)")
                           ) from None

    return wrapper


class Blocks(gr.Blocks):
    """`gr.Blocks` whose refusals of a request, before any handler runs, are one readable line.

    Gradio checks the inputs of every request first (files must have been uploaded to this server, values
    must fit their components) and answers a failed check with a bare `{"error": null}`; here it says why.
    """

    async def preprocess_data(self, *args, **kwargs):
        try:
            return await super().preprocess_data(*args, **kwargs)
        except gr.Error:
            raise
        except InvalidPathError as exc:
            log.warning("refused a request: %s", exc)
            named = re.search(r"Cannot move (.+?) to the gradio cache", str(exc))
            what = f"'{Path(named.group(1)).name}'" if named else "A file in this request"
            raise gr.Error(f"{what} was not uploaded to this app: upload the file first (in the page, or with "
                           "gradio_client.handle_file) and send what the upload returns.") from None
        except Exception as exc:  # noqa: BLE001 - Gradio raises many types for inputs it cannot read
            log.warning("could not read a request's inputs", exc_info=True)
            raise gr.Error(public(f"This request's inputs could not be read ({first_line(exc)}); send the "
                                  "values the app's API page lists for this endpoint.")) from None


def _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine: AppEngine) -> Settings:
    default = Settings.defaults(engine.config)
    return Settings(conf=default.conf if conf is None else float(conf),
                    top_k=default.top_k if top_k is None else int(top_k),
                    smoothing=default.smoothing if smoothing is None else float(smoothing),
                    scene_every=default.scene_every if scene_every is None else int(scene_every),
                    refresh_every=default.refresh_every if refresh_every is None else int(refresh_every),
                    model=model or engine.config.emotion_model)


def _banner(engine: AppEngine, spec: str) -> str:
    info = engine.model(spec)
    return views.model_banner(info.kind, info.description, engine.detector_text())


def _safe_name(path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path.split("?")[0]).stem)[:60].strip("._")
    return stem or "video"


# Gradio's webcam component only logs a refused camera to the console. This wraps getUserMedia so that a
# refusal (or a missing / busy camera, or an insecure page) shows as a readable message above the camera.
CAMERA_ERRORS_JS = r"""
() => {
  const say = (text) => {
    const box = document.querySelector('#cam-error-box');
    if (!box) return;
    box.textContent = text || '';
    box.style.display = text ? 'block' : 'none';
  };
  const md = navigator.mediaDevices;
  if (!window.isSecureContext || !md || !md.getUserMedia) {
    say('This page cannot use a camera: browsers allow cameras only on https pages or on localhost. ' +
        'Open the app on localhost, or serve it over https (for example with --share).');
    return;
  }
  if (md.__emomon) return;
  md.__emomon = true;
  const original = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => original(constraints).then(
    (stream) => { say(''); return stream; },
    (error) => {
      const name = error && error.name;
      say(name === 'NotAllowedError' || name === 'SecurityError'
        ? 'Camera permission denied. Allow camera access for this page (the camera icon in the address bar), ' +
          'then click the camera area again.'
        : name === 'NotFoundError' || name === 'OverconstrainedError'
        ? 'No camera found. Connect a camera, then click the camera area again.'
        : name === 'NotReadableError'
        ? 'The camera is in use by another application. Close it, then click the camera area again.'
        : 'The camera could not be opened (' + (error && error.message || name || 'unknown error') + ').');
      throw error;
    });
}
"""
CAMERA_ERROR_BOX = ('<div id="cam-error-box" role="alert" style="display:none;border:1px solid #b91c1c;'
                    'background:#fee2e2;color:#7f1d1d;border-radius:8px;padding:8px 12px;font-weight:600"></div>')


class WebcamSession:
    """One browser session's live stream: its pipeline (own tracker), clock and per-track summary."""

    def __init__(self, engine: AppEngine, settings: Settings):
        self.engine = engine
        self.pipeline = engine.pipeline(settings, prefix="cam")
        self._restart()

    def _restart(self) -> None:
        self.pipeline.reset()
        self.summary = RunSummary()
        self.start = self.last = time.monotonic()
        self.frames = 0
        self.rate = 0.0

    def process(self, rgb: np.ndarray, settings: Settings):
        if settings.model != self.pipeline.model_spec:  # another emotion model: a fresh pipeline
            self.pipeline.close()
            self.pipeline = self.engine.pipeline(settings, prefix="cam")
            self._restart()
        else:
            self.pipeline.configure(settings)
        now = time.monotonic()
        if now - self.last > WEBCAM_GAP_S:
            self._restart()
            now = self.start
        dt, self.last = now - self.last, now
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        h, w = image.shape[:2]
        if max(h, w) > WEBCAM_MAX_SIDE:
            s = WEBCAM_MAX_SIDE / max(h, w)
            image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        result = self.pipeline.process(self.frames, now - self.start, image)
        self.summary.add(result.index, result.time, result.persons)
        annotated = EmotionOverlay(OverlayConfig(top_k=settings.top_k)).annotate(
            image, result.detections, views.aligned_persons(result))
        self.frames += 1
        if dt > 0:
            self.rate = 1 / dt if self.frames <= 2 else 0.8 * self.rate + 0.2 / dt
        return cv2.cvtColor(annotated, cv2.COLOR_BGR2RGB), result

    def close(self) -> None:
        self.pipeline.close()


def _close_session(session) -> None:
    if isinstance(session, WebcamSession):
        session.close()


@dataclass
class Controls:
    """The settings column: every compute handler reads `inputs`; `active_model` remembers the loaded model."""

    model: gr.Dropdown
    conf: gr.Slider
    top_k: gr.Slider
    smoothing: gr.Slider
    scene_every: gr.Slider
    refresh_every: gr.Slider
    active_model: gr.State

    @property
    def inputs(self) -> list:
        """The settings in the order the handlers take them (after their own inputs)."""
        return [self.conf, self.top_k, self.smoothing, self.scene_every, self.refresh_every, self.model]


@dataclass
class WebcamTab:
    """The Webcam tab's components: camera in, annotated frame out, live tables, session state."""

    cam: gr.Image
    cam_out: gr.Image
    cam_status: gr.Markdown
    cam_live: gr.Dataframe
    cam_tracks: gr.Dataframe
    cam_state: gr.State


@dataclass
class VideoTab:
    """The Video tab's components: source and run options, outputs, track timelines, run state."""

    video_in: gr.Video
    server_source: gr.Textbox
    max_seconds: gr.Number
    stride: gr.Slider
    video_btn: gr.Button
    stop_btn: gr.Button
    video_status: gr.Markdown
    video_out: gr.Video
    files: gr.File
    track: gr.Dropdown
    emo_plot: gr.LinePlot
    vad_plot: gr.LinePlot
    video_tracks: gr.Dataframe
    run_state: gr.State


@dataclass
class ImageTab:
    """The Image tab's components: photo in, annotated photo and persons table out."""

    image_in: gr.Image
    image_out: gr.Image
    image_btn: gr.Button
    image_status: gr.Markdown
    image_table: gr.Dataframe


def build_app(config=None, *, engine: AppEngine | None = None) -> gr.Blocks:
    """The whole page. Pass an `AppConfig` (models load here) or a ready `AppEngine` (tests, notebooks).

        >>> from emomon.webapp import AppConfig, build_app  # doctest: +SKIP
        >>> build_app(AppConfig()).queue().launch()  # the zero-shot model  # doctest: +SKIP
    """
    if engine is None:
        engine = _make_engine(config)
    work_dir = _make_work_dir()

    # delete_cache: uploads and results in Gradio's cache older than 3 h are removed every 30 min.
    with Blocks(title="emomon: emotion monitor", analytics_enabled=False, delete_cache=(1800, 3 * 3600)) as demo:
        banner = _build_header(engine)
        with gr.Row(equal_height=False):
            controls = _build_settings(engine)
            with gr.Column(scale=4), gr.Tabs():
                webcam = _build_webcam_tab()
                video = _build_video_tab(engine.config)
                image = _build_image_tab()

        _wire_image(image, controls, engine)
        _wire_video(video, controls, engine, work_dir)
        _wire_webcam(webcam, controls, engine)
        demo.load(None, js=CAMERA_ERRORS_JS)
        _wire_model(banner, controls, engine)
    return demo


# ---- launch helpers ---------------------------------------------------------------------------------------

def _make_engine(config) -> AppEngine:
    """The shared models for `config` (the default `AppConfig` when None)."""
    return AppEngine(config or AppConfig())


def _make_work_dir() -> Path:
    """A fresh folder for video run outputs, removed when the process exits."""
    work_dir = Path(tempfile.mkdtemp(prefix="emomon-app-"))
    atexit.register(shutil.rmtree, work_dir, True)
    return work_dir


# ---- layout: header, settings column, one builder per tab -------------------------------------------------

def _build_header(engine: AppEngine) -> gr.HTML:
    """The title line and the model banner (returned: a model change rewrites it)."""
    gr.HTML(INTRO)
    return gr.HTML(_banner(engine, engine.config.emotion_model), elem_id="banner")


def _build_settings(engine: AppEngine) -> Controls:
    cfg = engine.config
    default = Settings.defaults(cfg)
    with gr.Column(scale=1, min_width=250):
        gr.Markdown("### Settings")
        choices = engine.model_choices
        model = gr.Dropdown(choices, value=cfg.emotion_model, label="Emotion model",
                            info="models this server offers; others load on first use",
                            interactive=len(choices) > 1, elem_id="model")
        conf = gr.Slider(0.05, 0.95, value=default.conf, step=0.05, label="Detector confidence",
                         info="lower finds more (and less certain) persons", elem_id="conf")
        top_k = gr.Slider(1, 5, value=default.top_k, step=1, label="Emotions per person",
                          elem_id="top-k")
        smoothing = gr.Slider(0, 0.95, value=default.smoothing, step=0.05, label="Smoothing over time",
                              info="0 = raw per-frame scores; higher = steadier, slower to react",
                              elem_id="smoothing")
        scene_every = gr.Slider(1, 16, value=default.scene_every, step=1,
                                label="Scene refresh (frames)",
                                info="whole-frame context recomputed at least every K frames",
                                elem_id="scene-every")
        refresh_every = gr.Slider(1, 16, value=default.refresh_every, step=1,
                                  label="Person refresh (frames)",
                                  info="a tracked person's emotions recomputed every M frames "
                                       "(sooner when they move)", elem_id="refresh-every")
        active_model = gr.State(cfg.emotion_model)
    return Controls(model, conf, top_k, smoothing, scene_every, refresh_every, active_model)


def _build_webcam_tab() -> WebcamTab:
    with gr.Tab("Webcam", id="webcam"):
        gr.Markdown(WEBCAM_HELP)
        gr.HTML(CAMERA_ERROR_BOX, elem_id="cam-error", padding=False)
        with gr.Row():
            cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                           webcam_options=gr.WebcamOptions(mirror=False), elem_id="cam",
                           height=380)
            cam_out = gr.Image(label="Live emotions", interactive=False, format="jpeg",
                               elem_id="cam-output", height=380)
        cam_status = gr.Markdown("Not streaming yet.", label="webcam status", elem_id="cam-status")
        with gr.Row():
            cam_live = gr.Dataframe(pd.DataFrame(columns=views.LIVE_COLUMNS), label="In frame now",
                                    interactive=False, elem_id="cam-persons", max_height=360,
                                    wrap=True, scale=3, column_widths=["11%", "62%", "9%", "9%", "9%"])
            cam_tracks = gr.Dataframe(pd.DataFrame(columns=views.SESSION_COLUMNS),
                                      label="Tracks this session", interactive=False,
                                      elem_id="cam-tracks", max_height=360, scale=2,
                                      column_widths=["17%", "41%", "20%", "22%"])
        cam_state = gr.State(None, delete_callback=_close_session)
    return WebcamTab(cam, cam_out, cam_status, cam_live, cam_tracks, cam_state)


def _build_video_tab(cfg) -> VideoTab:
    with gr.Tab("Video", id="video"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                video_in = gr.Video(sources=["upload"], label="Video file", include_audio=True,
                                    elem_id="video-input", height=240)
                server_source = gr.Textbox(
                    "", label="...or a path or URL on the server", visible=cfg.server_sources,
                    placeholder="/data/clip.mp4 or rtsp://camera/stream", elem_id="server-source")
            with gr.Column(scale=2, min_width=240):
                max_seconds = gr.Number(cfg.video_seconds, label="Process the first N seconds",
                                        info="0 = the whole video", minimum=0, elem_id="max-seconds")
                stride = gr.Slider(1, 10, value=1, step=1, label="Frame stride",
                                   info="process every N-th frame", elem_id="stride")
                with gr.Row():
                    video_btn = gr.Button("Process video", variant="primary", elem_id="video-run")
                    stop_btn = gr.Button("Stop", variant="secondary", elem_id="video-stop")
        video_status = gr.Markdown("", label="video status", elem_id="video-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                video_out = gr.Video(label="Annotated video", interactive=False, elem_id="video-output",
                                     height=360)
                files = gr.File(label="Downloads: JSONL, CSV, per-track summary", file_count="multiple",
                                interactive=False, elem_id="video-files")
            with gr.Column(scale=2, min_width=300):
                track = gr.Dropdown([], label="Timeline of track", elem_id="track")
                emo_plot = gr.LinePlot(x=views.EMOTION_PLOT[0], y=views.EMOTION_PLOT[1],
                                       color=views.EMOTION_PLOT[2], y_lim=[0, 1], height=280,
                                       title="Top emotions over time", show_label=False,
                                       elem_id="emotion-plot")
                vad_plot = gr.LinePlot(x=views.VAD_PLOT[0], y=views.VAD_PLOT[1], color=views.VAD_PLOT[2],
                                       y_lim=[1, 10], height=280, title="Valence / arousal / dominance",
                                       show_label=False, elem_id="vad-plot")
        video_tracks = gr.Dataframe(pd.DataFrame(columns=views.TRACK_COLUMNS), label="Tracks",
                                    interactive=False, elem_id="video-tracks",
                                    column_widths=["7%", "14%", "33%", "9%", "9%", "10%", "9%", "9%"])
        run_state = gr.State(None)
    return VideoTab(video_in, server_source, max_seconds, stride, video_btn, stop_btn, video_status,
                    video_out, files, track, emo_plot, vad_plot, video_tracks, run_state)


def _build_image_tab() -> ImageTab:
    with gr.Tab("Image", id="image"):
        with gr.Row():
            image_in = gr.Image(sources=["upload", "clipboard"], type="numpy", label="Photo",
                                elem_id="image-input", height=460, scale=2)
            image_out = gr.Image(label="Annotated", interactive=False, format="jpeg",
                                 elem_id="image-output", height=460, scale=3)
        with gr.Row():
            image_btn = gr.Button("Analyze photo", variant="primary", elem_id="image-run", scale=0,
                                  min_width=180)
            image_status = gr.Markdown("", label="image status", elem_id="image-status")
        image_table = gr.Dataframe(pd.DataFrame(columns=views.PERSON_COLUMNS), label="Persons",
                                   interactive=False, elem_id="image-persons",
                                   column_widths=["7%", "41%", "8%", "8%", "9%", "7%", "20%"])
    return ImageTab(image_in, image_out, image_btn, image_status, image_table)


# ---- image tab: handler and events ------------------------------------------------------------------------

def _image_handler(engine: AppEngine):
    @friendly
    def analyze_image(image, conf=None, top_k=None, smoothing=None, scene_every=None, refresh_every=None,
                      model=None):
        image = read_upload(image)
        settings = _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine)
        bgr = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
        pipeline = engine.pipeline(settings, prefix="img")
        try:
            pipeline.tracking = False
            result = pipeline.process(0, 0.0, bgr)
        finally:
            pipeline.close()
        persons = views.aligned_persons(result)
        dets = result.detections
        # Number persons left to right, in the image and in the table alike.
        order = sorted(range(len(dets)), key=lambda i: float(dets.xyxy[i][0]))
        dets = dets[np.asarray(order, dtype=int)] if len(order) else dets
        persons = [persons[i] for i in order]
        dets.tracker_id = np.arange(1, len(dets) + 1)
        annotated = EmotionOverlay(OverlayConfig(top_k=settings.top_k)).annotate(bgr, dets, persons)
        found = [(n, p) for n, p in zip(range(1, len(dets) + 1), persons) if p is not None]
        table = views.persons_table([p for _, p in found], [n for n, _ in found], settings.top_k)
        if not found:
            gr.Warning(f"No person found in this photo (detector confidence {settings.conf:.2f}). "
                       "Try a lower confidence or a photo where people are larger.")
            status = "No person found."
        else:
            status = f"**{len(found)} person{'s' * (len(found) != 1)}** found."
        return cv2.cvtColor(annotated, cv2.COLOR_BGR2RGB), table, status

    return analyze_image


def _wire_image(tab: ImageTab, controls: Controls, engine: AppEngine) -> None:
    analyze_image = _image_handler(engine)
    image_outputs = [tab.image_out, tab.image_table, tab.image_status]
    # preprocess=False: read_upload decodes the file itself, so a bad file gets a readable message.
    tab.image_btn.click(analyze_image, [tab.image_in, *controls.inputs], image_outputs, api_name="analyze_image",
                        concurrency_limit=2, concurrency_id="compute", preprocess=False,
                        show_progress_on=[tab.image_out])
    tab.image_in.upload(analyze_image, [tab.image_in, *controls.inputs], image_outputs, api_visibility="private",
                        concurrency_limit=2, concurrency_id="compute", preprocess=False,
                        show_progress_on=[tab.image_out])


# ---- video tab: handlers and events -----------------------------------------------------------------------

def _video_handler(engine: AppEngine, work_dir: Path):
    cfg = engine.config

    @friendly
    def analyze_video(video=None, server_path="", max_seconds=cfg.video_seconds, stride=1, conf=None,
                      top_k=None, smoothing=None, scene_every=None, refresh_every=None, model=None,
                      request: gr.Request = None, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        server_path = (server_path or "").strip()
        if server_path and not cfg.server_sources:
            raise gr.Error("This server does not read server-side paths or URLs (start it with "
                           "--server-sources).")
        spec = server_path or video
        if not spec:
            raise gr.Error("No video yet: upload a video file first.")
        settings = _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine)
        key = getattr(request, "session_hash", None) or "anonymous"
        cancel = engine.cancel.setdefault(key, threading.Event())
        cancel.clear()
        _prune_runs(work_dir)
        out_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir))
        progress(0, desc="opening the video")

        def report(done, total, text):
            progress((done, total) if total else None, desc=f"frame {done}{f'/{total}' if total else ''}"
                     f" · {text}", unit="frames")

        # An upload is named by its file name, as the user knows it, never by the folder Gradio keeps it in.
        run = process_video(engine, spec, settings, out_dir, max_seconds=float(max_seconds or 0),
                            stride=int(stride or 1), progress=report, cancel=cancel, name=_safe_name(str(spec)),
                            label=None if server_path else Path(spec).name)
        if not run.frames:
            raise gr.Error("The video has no frames that could be decoded.")
        choices = views.track_choices(run.timeline, run.summary_data)
        first = choices[0][1] if choices else None
        emo, vad = run.timeline.frames(first, max(3, settings.top_k))
        n_tracks = len(run.summary_data.get("tracks", []))
        status = public(f"Processed **{run.frames} frames** in {run.seconds:.1f} s ({run.fps:.1f} frames/s): "
                        f"**{n_tracks} tracks**, {run.persons} person detections; {run.stopped_by}.")
        if not run.persons:
            gr.Warning("No person found in the processed part of the video.")
        return (run.video, [run.jsonl, run.csv, run.summary], status, views.tracks_table(run.summary_data),
                gr.update(choices=choices, value=first), emo, vad, run)

    return analyze_video


def _stop_handler(engine: AppEngine):
    def stop_video(request: gr.Request = None):
        key = getattr(request, "session_hash", None) or "anonymous"
        if key in engine.cancel:
            engine.cancel[key].set()
        gr.Info("Stopping after the current frame; the part processed so far is kept.")

    return stop_video


@friendly
def show_track(track_id, run, top_k=None):
    """The emotion and VAD timelines of one track of a video run (empty plots without one)."""
    if run is None or track_id is None:
        return views.Timeline().frames(None)
    return run.timeline.frames(int(track_id), max(3, int(top_k or 3)))


def _wire_video(tab: VideoTab, controls: Controls, engine: AppEngine, work_dir: Path) -> None:
    video_outputs = [tab.video_out, tab.files, tab.video_status, tab.video_tracks, tab.track, tab.emo_plot,
                     tab.vad_plot, tab.run_state]
    tab.video_btn.click(_video_handler(engine, work_dir),
                        [tab.video_in, tab.server_source, tab.max_seconds, tab.stride, *controls.inputs],
                        video_outputs, api_name="analyze_video", concurrency_limit=1, concurrency_id="video",
                        show_progress_on=[tab.video_out])
    tab.stop_btn.click(_stop_handler(engine), None, None, api_name="stop_video", concurrency_limit=None,
                       queue=False)
    tab.track.change(show_track, [tab.track, tab.run_state, controls.top_k], [tab.emo_plot, tab.vad_plot],
                     api_visibility="private")


# ---- webcam tab: handler and events -----------------------------------------------------------------------

def _webcam_handler(engine: AppEngine):
    @friendly
    def webcam_frame(frame, session, conf=None, top_k=None, smoothing=None, scene_every=None,
                     refresh_every=None, model=None):
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), session
        settings = _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine)
        if not isinstance(session, WebcamSession):
            session = WebcamSession(engine, settings)
        annotated, result = session.process(frame, settings)
        summary = session.summary.to_dict()
        tracks = views.session_table(summary)
        h, w = result.image.shape[:2]
        status = (f"Streaming: frame {session.frames} · {session.rate:.1f} frames/s · {w}x{h} · "
                  f"{len(result.persons)} in frame · {len(summary['tracks'])} tracks this session")
        return annotated, views.live_table(result.persons, settings.top_k), tracks, status, session

    return webcam_frame


def _wire_webcam(tab: WebcamTab, controls: Controls, engine: AppEngine) -> None:
    cfg = engine.config
    tab.cam.stream(_webcam_handler(engine), [tab.cam, tab.cam_state, *controls.inputs],
                   [tab.cam_out, tab.cam_live, tab.cam_tracks, tab.cam_status, tab.cam_state],
                   stream_every=STREAM_EVERY_S, time_limit=cfg.webcam_time_limit,
                   concurrency_limit=cfg.webcam_sessions, concurrency_id="webcam", api_name="webcam_frame",
                   show_progress="hidden")


# ---- model switch: banner and events ----------------------------------------------------------------------

def _model_handler(engine: AppEngine):
    def change_model(model, active, progress=gr.Progress()):  # noqa: B008
        spec = model
        if spec == active:
            return gr.skip(), gr.skip(), active
        if not engine.loaded(spec):
            progress(None, desc=f"loading emotion model {spec} (once per server)")
        try:
            banner_html = _banner(engine, spec)
        except Exception as exc:  # noqa: BLE001 - keep the old model and say why
            log.exception("cannot load emotion model %s", spec)
            gr.Warning(public(f"Cannot load emotion model '{spec}': {exc}. Still using '{active}'."))
            return gr.skip(), gr.update(value=active), active
        return banner_html, gr.skip(), spec

    return change_model


def _wire_model(banner: gr.HTML, controls: Controls, engine: AppEngine) -> None:
    controls.model.change(_model_handler(engine), [controls.model, controls.active_model],
                          [banner, controls.model, controls.active_model], api_name="set_model",
                          concurrency_limit=1, concurrency_id="load")


def _prune_runs(work_dir: Path) -> None:
    now = time.time()
    for d in work_dir.glob("run-*"):
        try:
            if now - d.stat().st_mtime > RUN_MAX_AGE_S:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass
