"""`emomon app`: the Gradio web app (webcam, video and image tabs with live per-person emotion overlays).

Binds to 127.0.0.1 by default; `--host 0.0.0.0` serves the local network and `--share` makes a public
Gradio link, only when asked. Models load once, before the server starts, and are shared by all sessions.
"""

from __future__ import annotations

import argparse

from emomon.commands.predict import add_model_arguments
from emomon.commands.run import add_detector_arguments, add_pipeline_arguments


def add_app_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    g.add_argument("--port", type=int, default=7860, help="port to listen on")
    g.add_argument("--share", action="store_true", help="also create a public gradio.live link")
    g.add_argument("--max-upload-mb", type=int, default=200, metavar="N", help="largest upload accepted")
    g.add_argument("--extra-model", dest="extra_models", action="append", default=[],
                   metavar="zero-shot|random|NAME|PATH",
                   help="another emotion model the page may switch to (loaded on first use; repeatable)")
    g.add_argument("--server-sources", action="store_true",
                   help="let the Video tab read a path or URL on the server (only on trusted networks)")
    g.add_argument("--webcam-sessions", type=int, default=2, metavar="N",
                   help="webcam streams processed at once; further ones wait in the queue")
    g.add_argument("--webcam-time-limit", type=int, default=600, metavar="S",
                   help="seconds a webcam stream holds its slot before it goes back into the queue")
    g.add_argument("--video-seconds", type=float, default=30.0, metavar="S",
                   help="default for 'process the first N seconds' of a video (0 = all)")


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_app_arguments(parser)
    add_model_arguments(parser)
    add_detector_arguments(parser)
    add_pipeline_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def register(sub) -> None:
    build_parser(sub.add_parser("app", help="the web app (webcam, video, image) in the browser",
                                description=__doc__.replace("\n", " ")))


def check_args(args) -> None:
    from emomon.errors import InputError

    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port} is not a port number (1-65535)")
    if args.max_upload_mb < 1:
        raise InputError("--max-upload-mb must be >= 1")
    if args.webcam_sessions < 1 or args.webcam_time_limit < 1:
        raise InputError("--webcam-sessions and --webcam-time-limit must be >= 1")
    if args.video_seconds < 0:
        raise InputError("--video-seconds must be >= 0 (0 = the whole video)")
    if not 0 < args.conf < 1:
        raise InputError("--conf must be between 0 and 1")


def run(args) -> int:
    import logging
    import os
    import signal

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from emomon.commands.run import pipeline_config
    from emomon.webapp import AppConfig, AppEngine, build_app, launch

    check_args(args)
    pipeline_config(args)  # the same option checks as `emomon run`, before loading models
    config = AppConfig.from_args(args)
    engine = AppEngine(config)
    logging.getLogger("emomon.app").info("emotion model: %s; serving on http://%s:%d%s",
                                         engine.model(config.emotion_model).description, config.host,
                                         config.port, " (and a public share link)" if config.share else "")
    demo = build_app(engine=engine)

    def stop(signum, frame):  # SIGTERM (service managers, `kill`) shuts down like Ctrl-C: cleanly, files removed
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    launch(demo, config)  # returns after Ctrl-C / SIGTERM once the server is closed
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python app.py ...`: the same flags and exit codes as `emomon app ...`."""
    import sys

    from emomon.cli import main as cli_main

    return cli_main(["app", *(sys.argv[1:] if argv is None else argv)])
