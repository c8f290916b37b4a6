"""`emomon app`: the Gradio web app (webcam, video and image tabs with live per-person emotion overlays).

Binds to 127.0.0.1 by default; `--host 0.0.0.0` serves the local network and `--share` makes a public
Gradio link, only when asked. Models load once, before the server starts, and are shared by all sessions.
"""

from __future__ import annotations

import argparse

from emomon.commands.options import (
    add_detector_arguments,
    add_model_arguments,
    add_pipeline_arguments,
    add_privacy_arguments,
    monitor_config,
)
from emomon.webapp.config import AppConfig

_APP = AppConfig()
SERVER_FIELDS = ("extra_models", "host", "port", "share", "max_upload_mb", "server_sources", "webcam_sessions",
                 "webcam_time_limit", "video_seconds", "keep_minutes")


def add_app_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--host", default=_APP.host, help="address to bind (0.0.0.0: every interface)")
    g.add_argument("--port", type=int, default=_APP.port, help="port to listen on")
    g.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    g.add_argument("--max-upload-mb", type=int, default=_APP.max_upload_mb, metavar="N", help="largest upload accepted")
    g.add_argument("--extra-model", dest="extra_models", action="append", default=[],
                   metavar="zero-shot|random|NAME|PATH",
                   help="another emotion model the page may switch to (loaded on first use; repeatable)")
    g.add_argument("--server-sources", action="store_true",
                   help="let the Video tab read a path or URL on the server (only on trusted networks)")
    g.add_argument("--webcam-sessions", type=int, default=_APP.webcam_sessions, metavar="N",
                   help="webcam streams processed at once; further ones wait in the queue")
    g.add_argument("--webcam-time-limit", type=int, default=_APP.webcam_time_limit, metavar="S",
                   help="seconds a webcam stream holds its slot before it goes back into the queue")
    g.add_argument("--video-seconds", type=float, default=_APP.video_seconds, metavar="S",
                   help="default for 'process the first N seconds' of a video (0 = all)")
    g.add_argument("--keep-minutes", type=float, default=_APP.keep_minutes, metavar="M",
                   help="a session's uploads and results are deleted when its page closes, and at the latest "
                        f"M minutes after they were written (default {_APP.keep_minutes:g})")


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_app_arguments(parser)
    add_model_arguments(parser, backend=True)
    add_detector_arguments(parser)
    add_pipeline_arguments(parser)
    add_privacy_arguments(parser, anonymize=_APP.monitor.pipeline.privacy.anonymize)  # the page's default
    from emomon.commands.vlm_options import add_vlm_arguments

    add_vlm_arguments(parser)  # each person's explanation in the Webcam and Video tabs
    parser.set_defaults(func=run)
    return parser


def register(sub) -> None:
    build_parser(sub.add_parser("app", help="the web app (webcam, video, image) in the browser",
                                description=__doc__.replace("\n", " ")))


def check_args(args) -> None:
    from emomon.kernel import InputError

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port} is not a port number (1-65535)")
    if args.max_upload_mb < 1:
        raise InputError("--max-upload-mb must be >= 1")
    if args.webcam_sessions < 1 or args.webcam_time_limit < 1:
        raise InputError("--webcam-sessions and --webcam-time-limit must be >= 1")
    if args.video_seconds < 0:
        raise InputError("--video-seconds must be >= 0 (0 = the whole video)")
    if not 0 < args.keep_minutes < float("inf"):
        raise InputError(f"--keep-minutes must be a number > 0, not {args.keep_minutes:g}")
    if not 0 < args.conf < 1:
        raise InputError("--conf must be between 0 and 1")


def run(args) -> int:
    import logging
    import os
    import signal

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from emomon.webapp import AppConfig, AppEngine, build_app, launch

    check_args(args)
    # The same option checks as `emomon run`, before loading models.
    config = AppConfig(monitor=monitor_config(args), **{name: getattr(args, name) for name in SERVER_FIELDS})
    from emomon.commands.vlm_options import vlm_stage_config

    config.monitor.vlm = vlm_stage_config(args)  # `--vlm`: each person's explanation (a bad spec fails here)
    engine = AppEngine(config)
    logging.getLogger("emomon.app").info("emotion model: %s; serving on http://%s:%d%s",
                                         engine.model(config.emotion_model).description, config.host,
                                         config.port, " (and a public share link)" if config.share else "")
    logging.getLogger("emomon.app").info(
        "face hiding in the page's images: %s by default; a session's uploads and results are deleted when its page "
        "closes, at the latest after %g minutes", config.monitor.pipeline.privacy.anonymize, config.keep_minutes)
    demo = build_app(engine=engine)

    def stop(signum, frame):  # SIGTERM (service managers, `kill`) shuts down like Ctrl-C: cleanly, files removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    launch(demo, config)  # returns after Ctrl-C / SIGTERM once the server is closed
    return 0

