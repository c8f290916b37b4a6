"""The Gradio page: settings on the left; Webcam, Video and Image tabs; model banner on top.

Every handler turns bad input into one readable line in the page, never a stack trace, and the server keeps
serving: the page's own events put it in red in the status line by their button (`in_status`), the API
endpoints raise it (`friendly`, a `gr.Error`). Unexpected errors are logged with their traceback on the server
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
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import pandas as pd
from gradio.exceptions import InvalidPathError
from PIL import Image, ImageOps

from emomon.kernel import InputError, first_line, utc_now
from emomon.pipeline import ANONYMIZE_MODES, EmotionOverlay, FaceAnonymizer, OverlayConfig, RunSummary
from emomon.webapp import page, status, views
from emomon.webapp.config import AppConfig, Settings
from emomon.webapp.engine import AppEngine
from emomon.webapp.jobs import VideoJob, VideoJobs
from emomon.webapp.models import LOAD_FAILED, ModelChoices
from emomon.webapp.retention import SessionFiles, TrackedBlocks, page_notice
from emomon.webapp.video import probe_video, process_video

log = logging.getLogger(__name__)

WEBCAM_MAX_SIDE = 640      # live frames are scaled down to this (the detector's input size) before processing
WEBCAM_GAP_S = 3.0         # a pause longer than this starts a new recording: fresh track ids and summary
STREAM_EVERY_S = 0.1       # how often the browser sends a frame; the server always takes the newest one
RUN_MAX_AGE_S = 3 * 3600   # video run folders older than this are deleted when a new run starts

INTRO = """<div id="intro" title="per-person emotions in photos, videos and your webcam: 26 EMOTIC categories and
valence / arousal / dominance on 1-10"><span style="font-size:22px;font-weight:700">emomon</span></div>"""

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


def message_of(exc: Exception, where: str) -> str:
    """The one readable line for a handler's error; unexpected ones go to the server log with their traceback."""
    if isinstance(exc, gr.Error):
        return public(str(exc.message))
    if isinstance(exc, InputError):
        return public(str(exc))
    log.error("error in %s", where, exc_info=exc)
    return "Something went wrong on the server; details are in the server log. Try again."


def in_status(fn, n_outputs: int, at: int):
    """`fn` for the page: an error becomes one red line in output `at` (the status by the button) and the
    other outputs stay as they were; no toast. API endpoints keep `friendly` errors (an `AppError`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown as one line, logged when unexpected
            out = [gr.skip()] * n_outputs
            out[at] = status.error(message_of(exc, fn.__name__))
            return tuple(out)

    return wrapper


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


class Blocks(TrackedBlocks):
    """`gr.Blocks` whose refusals of a request, before any handler runs, are one readable line (and which notes
    each session's files: `retention`).

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


def _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine: AppEngine,
              anonymize=None) -> Settings:
    default = Settings.defaults(engine.config)
    return Settings(conf=default.conf if conf is None else float(conf),
                    top_k=default.top_k if top_k is None else int(top_k),
                    smoothing=default.smoothing if smoothing is None else float(smoothing),
                    scene_every=default.scene_every if scene_every is None else int(scene_every),
                    refresh_every=default.refresh_every if refresh_every is None else int(refresh_every),
                    model=model or engine.config.emotion_model, anonymize=anonymize or default.anonymize)


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
        self.done_at: list[float] = []   # when the last frames were finished: frames/s over a window
        self.process_s = 0.0             # seconds the newest frame took to process
        self.overlay = EmotionOverlay(OverlayConfig())
        self.faces = FaceAnonymizer()

    @property
    def rate(self) -> float:
        """Frames shown per second over the last (up to) 10 frames; 0 until two frames are done."""
        t = self.done_at[-10:]
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) >= 2 and t[-1] > t[0] else 0.0

    def status_text(self, persons: int, tracks: int, size: tuple[int, int]) -> str:
        """The live status line: measured speed and lag, never a rate from a single frame."""
        per_frame = 1 / self.rate if self.rate else self.process_s  # the whole server turn, not the models only
        speed = (f"{self.rate:.1f} frames/s · {per_frame:.2f} s per frame ({self.process_s:.2f} s in the models)"
                 if self.rate else "measuring speed")
        # Only the newest frame is processed (Gradio keeps the latest one sent), so what is shown is one turn
        # old plus the age of that frame when the turn began: half the send interval on average.
        lag = per_frame + STREAM_EVERY_S / 2
        vlm = self.pipeline.vlm  # `--vlm`: whether it answers, in the same line
        return (f"Streaming: frame {self.frames} · {speed} · about {lag:.1f} s behind the camera · "
                f"{size[0]}x{size[1]} · {persons} in frame · {tracks} tracks this session"
                + (f" · {vlm.status_line()}" if vlm is not None else ""))

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
        self.last = now
        captured = utc_now()
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        h, w = image.shape[:2]
        if max(h, w) > WEBCAM_MAX_SIDE:
            s = WEBCAM_MAX_SIDE / max(h, w)
            image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        result = self.pipeline.process(self.frames, now - self.start, image)
        result.utc = captured  # the same absolute time as `emomon run` records for a live source
        self.summary.add(result.index, result.time, result.persons)
        self.overlay.config.top_k = settings.top_k
        self.faces.mode = settings.anonymize
        annotated = self.overlay.annotate(self.faces(image, result.detections), result.detections,
                                          views.aligned_persons(result))
        self.frames += 1
        done = time.monotonic()
        self.process_s = done - now
        self.done_at = [*self.done_at[-9:], done]
        self.last = done  # a pause is measured from the end of the last frame, not its start
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
    anonymize: gr.Radio
    model_status: gr.HTML

    @property
    def inputs(self) -> list:
        """The settings in the order the handlers take them (after their own inputs)."""
        return [self.conf, self.top_k, self.smoothing, self.scene_every, self.refresh_every, self.model,
                self.anonymize]


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
    video_status: gr.HTML
    video_out: gr.Video
    files: gr.File
    track: gr.Dropdown
    emo_plot: gr.LinePlot
    vad_plot: gr.LinePlot
    video_tracks: gr.Dataframe
    run_state: gr.State
    preview: gr.Image
    job_id: gr.Textbox        # the running job's id, kept in the browser: a reloaded page follows it again
    track_boxes: gr.Textbox   # the selected track's boxes over time (JSON), outlined over the playing video
    api_btn: gr.Button


@dataclass
class ImageTab:
    """The Image tab's components: photo in, annotated photo and persons table out, the selected person."""

    image_in: gr.Image
    image_out: gr.Image
    image_btn: gr.Button
    image_status: gr.HTML
    image_table: gr.Dataframe
    detail: gr.HTML
    photo_state: gr.State
    api_btn: gr.Button


def build_app(config=None, *, engine: AppEngine | None = None) -> gr.Blocks:
    """The whole page. Pass an `AppConfig` (models load here) or a ready `AppEngine` (tests, notebooks).

        >>> from emomon.webapp import AppConfig, build_app  # doctest: +SKIP
        >>> build_app(AppConfig()).queue().launch()  # the zero-shot model  # doctest: +SKIP
    """
    if engine is None:
        engine = _make_engine(config)
    work_dir = _make_work_dir()
    files = SessionFiles([work_dir], keep_s=60 * engine.config.keep_minutes)  # deleted on close or when old

    models = ModelChoices(engine)
    models.check()  # extra models load in the background; one that fails is left out of the dropdown
    jobs = VideoJobs()

    with Blocks(title="emomon: emotion monitor", analytics_enabled=False, delete_cache=files.delete_cache) as demo:
        banner = _build_header(engine)
        with gr.Row(equal_height=False, elem_id="main-row"):
            controls = _build_settings(engine, models)
            with gr.Column(scale=4, elem_id="tabs-col"), gr.Tabs():
                webcam = _build_webcam_tab()
                video = _build_video_tab(engine.config)
                image = _build_image_tab()

        _wire_image(image, controls, engine)
        _wire_video(video, controls, engine, work_dir, jobs, demo, files)
        _wire_webcam(webcam, controls, engine)
        demo.load(None, js=CAMERA_ERRORS_JS)
        demo.load(None, js=page.WEBCAM_STOPPED_JS)
        demo.load(None, js=page.QUIET_PLAYER_TOASTS_JS)
        _wire_model(banner, controls, engine, models, demo)
        files.attach(demo)
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
    """The title line and the model banner (returned: a model change rewrites it), in one row."""
    with gr.Row(elem_id="header-row", equal_height=True):
        gr.HTML(INTRO, padding=False, min_width=100, scale=0, elem_id="intro-box")
        return gr.HTML(_banner(engine, engine.config.emotion_model), elem_id="banner", padding=False, scale=1)


def _build_settings(engine: AppEngine, models: ModelChoices) -> Controls:
    cfg = engine.config
    default = Settings.defaults(cfg)
    with gr.Column(scale=1, min_width=250, elem_id="settings-col"):
        gr.Markdown("### Settings")
        choices = models.entries()
        model = gr.Dropdown(choices, value=cfg.emotion_model, label="Emotion model",
                            info="models this server offers", interactive=len(choices) > 1, elem_id="model")
        model_status = gr.HTML("", elem_id="model-status", padding=False)
        conf = gr.Slider(0.05, 0.95, value=default.conf, step=0.05, label="Detector confidence",
                         info="lower finds more (and less certain) persons", elem_id="conf")
        top_k = gr.Slider(1, 5, value=default.top_k, step=1, label="Emotions per person",
                          info="in tables and panels", elem_id="top-k")
        with gr.Accordion("Advanced (video & webcam)", open=False, elem_id="advanced"):
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
        anonymize = gr.Radio(list(ANONYMIZE_MODES), value=default.anonymize, label="Hide faces",
                             info="in the annotated photo, video and webcam; the emotion model still sees them",
                             elem_id="anonymize")
        gr.Markdown(page_notice(cfg.keep_minutes), elem_id="privacy-note")
        active_model = gr.State(cfg.emotion_model)
    return Controls(model, conf, top_k, smoothing, scene_every, refresh_every, active_model, anonymize,
                    model_status)


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
                    api_btn = gr.Button("analyze_video (API)", visible=False)
                video_status = gr.HTML("", elem_id="video-status", padding=False)
                preview = gr.Image(label="Preview: the newest processed frame", interactive=False, format="jpeg",
                                   elem_id="video-preview", height=200, show_label=True)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                video_out = gr.Video(label="Annotated video", interactive=False, elem_id="video-output",
                                     height=360)
                files = gr.File(label="Downloads: JSONL, CSV, per-track summary", file_count="multiple",
                                interactive=False, elem_id="video-files")
            with gr.Column(scale=2, min_width=300):
                track = gr.Dropdown([], label="Timeline of track", elem_id="track",
                                    info="the video outlines this person with a dashed yellow box")
                emo_plot = gr.LinePlot(x=views.EMOTION_PLOT[0], y=views.EMOTION_PLOT[1],
                                       color=views.EMOTION_PLOT[2], y_lim=[0, 1], height=280,
                                       color_map=views.emotion_colors(),
                                       title="Top emotions over time", show_label=False,
                                       elem_id="emotion-plot")
                vad_plot = gr.LinePlot(x=views.VAD_PLOT[0], y=views.VAD_PLOT[1], color=views.VAD_PLOT[2],
                                       color_map=views.emotion_colors(),
                                       y_lim=[1, 10], height=280, title="Valence / arousal / dominance",
                                       show_label=False, elem_id="vad-plot")
        video_tracks = gr.Dataframe(pd.DataFrame(columns=views.TRACK_COLUMNS), label="Tracks",
                                    interactive=False, elem_id="video-tracks",
                                    column_widths=["7%", "14%", "33%", "9%", "9%", "10%", "9%", "9%"])
        run_state = gr.State(None)
        job_id = gr.Textbox("", visible=False)  # mirrored in the browser's localStorage (see _wire_video)
        track_boxes = gr.Textbox("[]", visible=False)
    return VideoTab(video_in, server_source, max_seconds, stride, video_btn, stop_btn, video_status,
                    video_out, files, track, emo_plot, vad_plot, video_tracks, run_state, preview, job_id,
                    track_boxes, api_btn)


def _build_image_tab() -> ImageTab:
    with gr.Tab("Image", id="image"):
        with gr.Row():
            image_in = gr.Image(sources=["upload", "clipboard"], type="numpy", label="Photo",
                                elem_id="image-input", height=340, scale=2)
            image_out = gr.Image(label="Annotated", interactive=False, format="jpeg",
                                 elem_id="image-output", height=340, scale=3)
        with gr.Row(equal_height=True):
            image_btn = gr.Button("Analyze photo", variant="primary", elem_id="image-run", scale=0,
                                  min_width=160)
            image_status = gr.HTML("", elem_id="image-status", padding=False)
            api_btn = gr.Button("analyze_image (API)", visible=False)
        with gr.Row(equal_height=False):
            image_table = gr.Dataframe(pd.DataFrame(columns=views.PERSON_COLUMNS), label="Persons (select one)",
                                       interactive=False, elem_id="image-persons", scale=4, wrap=True,
                                       column_widths=["6%", "31%", "13%", "13%", "16%", "9%", "12%"])
            detail = gr.HTML("", elem_id="person-detail-box", padding=False, min_width=160)
        gr.Markdown(views.VAD_KEY, elem_id="overlay-key")
        photo_state = gr.State(None)
    return ImageTab(image_in, image_out, image_btn, image_status, image_table, detail, photo_state, api_btn)


# ---- image tab: handler and events ------------------------------------------------------------------------

def _image_handler(engine: AppEngine):
    """(API handler, page handler, settings re-run handler) for photos."""

    def analyze(image, previous, conf=None, top_k=None, smoothing=None, scene_every=None, refresh_every=None,
                model=None, anonymize=None):
        raw, image = image, read_upload(image)
        settings = _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine, anonymize)
        bgr = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
        pipeline = engine.pipeline(settings, prefix="img")
        try:
            pipeline.tracking = False
            result = pipeline.process(0, 0.0, bgr)
        finally:
            pipeline.close()
        persons = views.aligned_persons(result)
        dets = result.detections
        # Numbered left to right, in the image and in the table alike; a re-run of the same photo (another
        # setting) keeps the numbers of the persons it finds again.
        same = previous is not None and previous.get("photo") == photo_key(raw)
        numbers = views.stable_numbers(dets.xyxy, previous["numbers"] if same else None)
        order = sorted(range(len(dets)), key=lambda i: numbers[i])
        dets = dets[np.asarray(order, dtype=int)] if len(order) else dets
        persons = [persons[i] for i in order]
        dets.tracker_id = np.asarray(sorted(numbers), dtype=int)
        faces_hidden = FaceAnonymizer(settings.anonymize)(bgr, dets)
        annotated = EmotionOverlay(OverlayConfig(top_k=settings.top_k)).annotate(faces_hidden, dets, persons)
        found = [(int(n), p) for n, p in zip(dets.tracker_id, persons) if p is not None]
        table = views.persons_table([p for _, p in found], [n for n, _ in found], settings.top_k)
        if not found:
            text = (f"No person found (detector confidence {settings.conf:.2f}): try a lower confidence or a "
                    "photo where people are larger.")
        else:
            text = f"**{len(found)} person{'s' * (len(found) != 1)}** found."
        state = {"photo": photo_key(raw), "numbers": [(int(n), [float(v) for v in b])
                                                         for n, b in zip(dets.tracker_id, dets.xyxy)],
                 "image": faces_hidden, "dets": dets, "persons": persons, "top_k": settings.top_k}
        return cv2.cvtColor(annotated, cv2.COLOR_BGR2RGB), table, text, state

    @friendly
    def analyze_image(image, conf=None, top_k=None, smoothing=None, scene_every=None, refresh_every=None,
                      model=None, anonymize=None):
        annotated, table, text, _ = analyze(image, None, conf, top_k, smoothing, scene_every, refresh_every,
                                            model, anonymize)
        return annotated, table, text

    def page(image, previous, *settings):
        annotated, table, text, state = analyze(image, previous, *settings)
        line = status.error(text) if text.startswith("No person") else status.note(text.replace("**", ""))
        return annotated, table, line, state, ""

    def rerun(image, previous, *settings):
        """A setting changed: analyse the photo on screen again (nothing to do without one)."""
        if image is None or previous is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return page(image, previous, *settings)

    return analyze_image, in_status(page, 5, 2), in_status(rerun, 5, 2)


def photo_key(payload) -> str:
    """Which photo a request is about (the upload's server path), so a new photo gets fresh numbers."""
    data = payload if isinstance(payload, dict) else getattr(payload, "model_dump", lambda: {})()
    return str((data or {}).get("path"))


@friendly
def select_person(state, evt: gr.SelectData):
    """A row of the persons table selected: that person's full panel in the photo and all values beside it."""
    if not state or evt is None or evt.index is None:
        return gr.skip(), gr.skip()
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    found = [(int(n), p) for n, p in zip(state["dets"].tracker_id, state["persons"]) if p is not None]
    if not 0 <= int(row) < len(found):
        return gr.skip(), gr.skip()
    number, person = found[int(row)]
    overlay = EmotionOverlay(OverlayConfig(top_k=max(3, state["top_k"]), highlight=number))
    annotated = overlay.annotate(state["image"], state["dets"], state["persons"])
    return cv2.cvtColor(annotated, cv2.COLOR_BGR2RGB), views.person_detail(number, person)


def _wire_image(tab: ImageTab, controls: Controls, engine: AppEngine) -> None:
    analyze_image, analyze_page, rerun = _image_handler(engine)
    # The API endpoint (errors raised: gradio_client sees an AppError) sits on a hidden button; the page's
    # own events show errors as one line in the status by the button.
    # preprocess=False: read_upload decodes the file itself, so a bad file gets a readable message.
    tab.api_btn.click(analyze_image, [tab.image_in, *controls.inputs],
                      [tab.image_out, tab.image_table, tab.image_status], api_name="analyze_image",
                      concurrency_limit=2, concurrency_id="compute", preprocess=False)
    page_in = [tab.image_in, tab.photo_state, *controls.inputs]
    page_out = [tab.image_out, tab.image_table, tab.image_status, tab.photo_state, tab.detail]
    common = dict(concurrency_limit=2, concurrency_id="compute", preprocess=False, api_visibility="private",
                  show_progress_on=[tab.image_out])
    tab.image_btn.click(analyze_page, page_in, page_out, **common)
    tab.image_in.upload(analyze_page, page_in, page_out, **common)
    # Settings that change a photo's result re-run it: changes that come while it runs collapse into one
    # more run with the newest values (always_last), so dragging a slider does not queue a run per step.
    for slider in (controls.conf, controls.top_k):
        slider.change(rerun, page_in, page_out, trigger_mode="always_last", **common)
    controls.anonymize.change(rerun, page_in, page_out, trigger_mode="always_last", **common)
    controls.active_model.change(rerun, page_in, page_out, trigger_mode="always_last", **common)
    tab.image_table.select(select_person, [tab.photo_state], [tab.image_out, tab.detail],
                           api_visibility="private", concurrency_limit=None)


# ---- video tab: handlers and events -----------------------------------------------------------------------

def _video_handler(engine: AppEngine, work_dir: Path, jobs: VideoJobs, files: SessionFiles):
    """(API handler, page start, page reconnect, upload check) for video jobs."""
    cfg = engine.config

    def submit(video, server_path, max_seconds, stride, settings: Settings, request) -> VideoJob:
        server_path = (server_path or "").strip()
        if server_path and not cfg.server_sources:
            raise gr.Error("This server does not read server-side paths or URLs (start it with "
                           "--server-sources).")
        spec = server_path or video
        if not spec:
            raise gr.Error("No video yet: upload a video file first.")
        # An upload is named by its file name, as the user knows it, never by the folder Gradio keeps it in.
        label = None if server_path else Path(spec).name
        if label:
            probe_video(spec, label)  # an unplayable upload never reaches the queue

        def work(job: VideoJob):
            _prune_runs(work_dir)
            out_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir))
            run = process_video(engine, spec, settings, out_dir, max_seconds=float(max_seconds or 0),
                                stride=int(stride or 1), name=_safe_name(str(spec)), label=label, job=job)
            if not run.frames:
                raise InputError("The video has no frames that could be decoded.")
            jobs.seconds_per_frame[settings.model] = run.seconds / run.frames
            return run

        owner = getattr(request, "session_hash", None) or "anonymous"
        pinned = files.pin([spec])  # a reload while it waits must not delete the upload it will read
        return jobs.submit(owner, label or spec, work, top_k=settings.top_k, on_end=lambda: files.unpin(pinned))

    def results(job: VideoJob):
        run = job.result
        choices = views.track_choices(run.timeline, run.summary_data)
        first = choices[0][1] if choices else None
        emo, vad = run.timeline.frames(first, max(3, job.top_k))
        n_tracks = len(run.summary_data.get("tracks", []))
        text = public(f"Processed **{run.frames} frames** in {run.seconds:.1f} s ({run.fps:.1f} frames/s): "
                      f"**{n_tracks} tracks**, {run.persons} person detections; {run.stopped_by}.")
        if not run.persons:
            text += " No person found in the processed part of the video."
        return (run.video, [run.jsonl, run.csv, run.summary], text, views.tracks_table(run.summary_data),
                gr.update(choices=choices, value=first), emo, vad, run)

    @friendly
    def analyze_video(video=None, server_path="", max_seconds=cfg.video_seconds, stride=1, conf=None,
                      top_k=None, smoothing=None, scene_every=None, refresh_every=None, model=None,
                      anonymize=None, request: gr.Request = None, progress=gr.Progress()):  # noqa: B008
        settings = _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine, anonymize)
        job = submit(video, server_path, max_seconds, stride, settings, request)
        while job.active:
            if job.state == "waiting":
                progress(None, desc=f"waiting for {jobs.ahead(job)} video(s) ahead")
            else:
                progress((job.done, job.total) if job.total else None,
                         desc=f"frame {job.done}{f'/{job.total}' if job.total else ''}", unit="frames")
            time.sleep(0.25)
        if job.error:
            raise gr.Error(public(job.error))
        return results(job)

    skip = gr.skip()

    def follow(job: VideoJob):
        """Page outputs while `job` runs (status, preview, a disabled button), then its results."""
        seen = -1
        yield (*[skip] * 7, skip, skip, gr.update(interactive=False), job.id)
        while job.active:
            if job.cancel.is_set():
                line = status.note("after the current frame; the part processed so far is kept.", "Stopping")
            elif job.state == "waiting":
                line = status.waiting(jobs.ahead(job))
            else:
                line = status.progress(job.done, job.total, job.rate, job.remaining_s, job.persons, job.name)
            preview = skip
            if job.preview_version != seen and job.preview is not None:
                seen, preview = job.preview_version, job.preview
            # The button stays disabled on every update: a late upload check must not enable it mid-run.
            yield (skip, skip, line, *[skip] * 5, preview, gr.update(interactive=False), skip)
            time.sleep(0.5)
        if job.error:
            yield (*[skip] * 2, status.error(public(job.error)), *[skip] * 5, skip,
                   gr.update(interactive=True), None)
            return
        video, files, text, tracks, track, emo, vad, run = results(job)
        yield (video, files, status.note(text.replace("**", ""), "Done."), tracks, track, emo, vad, run,
               job.preview if job.preview is not None else skip, gr.update(interactive=True), job.id)

    def start(video, server_path, max_seconds, stride, *settings, request: gr.Request = None):
        try:
            job = submit(video, server_path, max_seconds, stride, _settings(*settings[:6], engine, *settings[6:]),
                         request)
        except Exception as exc:  # noqa: BLE001 - one red line by the button
            yield (*[skip] * 2, status.error(message_of(exc, "start video")), *[skip] * 8)
            return
        yield from follow(job)

    def reconnect(job_id, request: gr.Request = None):
        """A (re)loaded page follows the job its browser started, if the server still has it."""
        owner = getattr(request, "session_hash", None) or "anonymous"
        job = jobs.attach(job_id, owner)
        if job is None or job.state == "failed":
            yield (*[skip] * 10, None)
            return
        yield from follow(job)

    def check_upload(video, server_path, max_seconds, stride, model):
        """Before a run: is the upload playable, how many frames, how long at this server's speed."""
        if (server_path or "").strip():
            return status.note("The server reads this path or URL when you press Process video.", "Ready."), \
                gr.update(interactive=True)
        if not video:
            return "", gr.update(interactive=True)
        name = Path(video).name
        try:
            count, fps = probe_video(video, name)
        except InputError as exc:
            return status.error(str(exc)), gr.update(interactive=False)
        stride = max(1, int(stride or 1))
        frames = -(-count // stride) if count else None
        if max_seconds and float(max_seconds) > 0 and fps:
            limit = max(1, int(-(-float(max_seconds) * fps // stride)))
            frames = limit if frames is None else min(frames, limit)
        what = f"'{name}'" + (f", first {float(max_seconds):g} s" if max_seconds and float(max_seconds) > 0 else "")
        return status.estimate(frames, jobs.seconds_per_frame.get(model), what), gr.update(interactive=True)

    return analyze_video, start, reconnect, check_upload


def _stop_handler(jobs: VideoJobs):
    def stop_video(request: gr.Request = None):
        jobs.stop(getattr(request, "session_hash", None) or "anonymous")

    return stop_video


@friendly
def show_track(track_id, run, top_k=None):
    """The emotion and VAD timelines of one track of a video run (empty plots without one), and its boxes
    for the page to outline that person in the annotated video."""
    if run is None or track_id is None:
        return (*views.Timeline().frames(None), "[]")
    emo, vad = run.timeline.frames(int(track_id), max(3, int(top_k or 3)))
    return emo, vad, run.timeline.track_boxes(int(track_id))


def _wire_video(tab: VideoTab, controls: Controls, engine: AppEngine, work_dir: Path, jobs: VideoJobs,
                demo: gr.Blocks, files: SessionFiles) -> None:
    analyze_video, start, reconnect, check_upload = _video_handler(engine, work_dir, jobs, files)
    api_outputs = [tab.video_out, tab.files, tab.video_status, tab.video_tracks, tab.track, tab.emo_plot,
                   tab.vad_plot, tab.run_state]
    page_outputs = [*api_outputs, tab.preview, tab.video_btn, tab.job_id]
    inputs = [tab.video_in, tab.server_source, tab.max_seconds, tab.stride, *controls.inputs]
    # The API endpoint waits for its job and raises errors (an AppError for gradio_client); it sits on a
    # hidden button. The page's button only follows a job that runs in the app's worker thread.
    tab.api_btn.click(analyze_video, inputs, api_outputs, api_name="analyze_video", concurrency_limit=None)
    tab.video_btn.click(start, inputs, page_outputs, api_visibility="private", concurrency_limit=None,
                        show_progress="hidden")
    # The job id lives in localStorage, so a reloaded page (a new Gradio session) finds its job again.
    tab.job_id.change(None, [tab.job_id], None, js=JOB_ID_SAVE_JS)
    demo.load(reconnect, [tab.job_id], page_outputs, api_visibility="private", concurrency_limit=None,
              show_progress="hidden", js=JOB_ID_LOAD_JS)
    demo.unload(_release_handler(jobs))
    checks = [tab.video_in, tab.server_source, tab.max_seconds, tab.stride, controls.model]
    for event in (tab.video_in.change, tab.max_seconds.change, tab.stride.release):
        event(check_upload, checks, [tab.video_status, tab.video_btn], api_visibility="private",
              concurrency_limit=None, show_progress="hidden", trigger_mode="always_last")
    tab.stop_btn.click(_stop_handler(jobs), None, None, api_name="stop_video", concurrency_limit=None,
                       queue=False)
    tab.track.change(show_track, [tab.track, tab.run_state, controls.top_k],
                     [tab.emo_plot, tab.vad_plot, tab.track_boxes], api_visibility="private"
                     ).then(None, [tab.track_boxes], None, js=page.HIGHLIGHT_TRACK_JS)


JOB_ID_SAVE_JS = ("(id) => { if (id) localStorage.setItem('emomon-video-job', id); "
                  "else localStorage.removeItem('emomon-video-job'); }")
JOB_ID_LOAD_JS = "(id) => localStorage.getItem('emomon-video-job') || ''"


def _release_handler(jobs: VideoJobs):
    def page_closed(request: gr.Request = None):
        """The page went away (closed or reloaded): its jobs stop unless it comes back within a few seconds."""
        if request is not None and request.session_hash:
            jobs.release(request.session_hash)

    return page_closed


# ---- webcam tab: handler and events -----------------------------------------------------------------------

def _webcam_handler(engine: AppEngine):
    def webcam_frame(frame, session, conf=None, top_k=None, smoothing=None, scene_every=None,
                     refresh_every=None, model=None, anonymize=None):
        if frame is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), session
        settings = _settings(conf, top_k, smoothing, scene_every, refresh_every, model, engine, anonymize)
        if not isinstance(session, WebcamSession):
            session = WebcamSession(engine, settings)
        annotated, result = session.process(frame, settings)
        summary = session.summary.to_dict()
        tracks = views.session_table(summary)
        h, w = result.image.shape[:2]
        line = session.status_text(len(result.persons), len(summary["tracks"]), (w, h))
        explain = views.explanations(summary) if session.pipeline.vlm is not None else None
        return annotated, views.live_table(result.persons, settings.top_k, explain), tracks, line, session

    def webcam_or_error(frame, session, *settings):
        """An error shows in the status line under the camera, once per frame, instead of a toast a frame."""
        try:
            return webcam_frame(frame, session, *settings)
        except Exception as exc:  # noqa: BLE001 - one line; unexpected ones logged with their traceback
            return gr.skip(), gr.skip(), gr.skip(), f"**Error:** {message_of(exc, 'webcam_frame')}", session

    return webcam_or_error


def _wire_webcam(tab: WebcamTab, controls: Controls, engine: AppEngine) -> None:
    cfg = engine.config
    tab.cam.stream(_webcam_handler(engine), [tab.cam, tab.cam_state, *controls.inputs],
                   [tab.cam_out, tab.cam_live, tab.cam_tracks, tab.cam_status, tab.cam_state],
                   stream_every=STREAM_EVERY_S, time_limit=cfg.webcam_time_limit,
                   concurrency_limit=cfg.webcam_sessions, concurrency_id="webcam", api_name="webcam_frame",
                   show_progress="hidden")


# ---- model switch: banner and events ----------------------------------------------------------------------

def _model_handler(engine: AppEngine, models: ModelChoices):
    def change_model(model, active, progress=gr.Progress()):  # noqa: B008
        spec = model
        if spec == active:
            return gr.skip(), gr.skip(), active, ""
        if not engine.loaded(spec):
            progress(None, desc=f"loading emotion model {models.label(spec)} (once per server)")
        if spec not in engine.model_choices or not models.load(spec):  # the reason is in the server log
            line = LOAD_FAILED.format(active=models.label(active or engine.config.emotion_model))
            return gr.skip(), gr.update(value=active, choices=models.entries()), active, status.error(line)
        return _banner(engine, spec), gr.skip(), spec, ""

    return change_model


def _wire_model(banner: gr.HTML, controls: Controls, engine: AppEngine, models: ModelChoices,
                demo: gr.Blocks) -> None:
    controls.model.change(_model_handler(engine, models), [controls.model, controls.active_model],
                          [banner, controls.model, controls.active_model, controls.model_status],
                          api_name="set_model", concurrency_limit=1, concurrency_id="load")
    # A page opened after the start-up check offers only the models that passed it.
    demo.load(lambda: gr.update(choices=models.entries()), None, [controls.model], api_visibility="private",
              queue=False)


def _prune_runs(work_dir: Path) -> None:
    now = time.time()
    for d in work_dir.glob("run-*"):
        try:
            if now - d.stat().st_mtime > RUN_MAX_AGE_S:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass
