"""The Gradio web app: webcam, video and image tabs with live per-person emotion overlays.

Models load once per process (`AppEngine`) and are shared by every browser session; each session keeps its
own tracker, smoothing and reuse state. `emomon app` (or `python app.py`) starts it on localhost.

    >>> from emomon.webapp import AppConfig, build_app, launch  # doctest: +SKIP
    >>> demo = build_app(AppConfig(emotion_model="random"))     # doctest: +SKIP
    >>> launch(demo, AppConfig())                                # doctest: +SKIP
"""

from emomon.webapp.engine import AppConfig, AppEngine, Settings

__all__ = ["AppConfig", "AppEngine", "Settings", "build_app", "launch"]


def build_app(config: AppConfig | None = None, *, engine: AppEngine | None = None):
    """The page as a `gr.Blocks` (see `emomon.webapp.ui.build_app`)."""
    from emomon.webapp.ui import build_app as _build

    return _build(config, engine=engine)


def launch(demo, config: AppConfig, **kwargs):
    """Queue and serve `demo` as `emomon app` does: localhost unless told otherwise, share only when asked."""
    demo.queue(max_size=64, default_concurrency_limit=1)
    return demo.launch(server_name=config.host, server_port=config.port, share=config.share,
                       max_file_size=f"{config.max_upload_mb}mb", show_error=False, footer_links=["api"],
                       **kwargs)
