"""The Gradio web app: webcam, video and image tabs with live per-person emotion overlays.

Models load once per process (`AppEngine`) and are shared by every browser session; each session keeps its
own tracker, smoothing and reuse state. `emomon app` (or `python app.py`) starts it on localhost.

    >>> from emomon.webapp import AppConfig, build_app, launch  # doctest: +SKIP
    >>> from emomon.pipeline import EmotionModelConfig, MonitorConfig  # doctest: +SKIP
    >>> demo = build_app(AppConfig(MonitorConfig(model=EmotionModelConfig("random"))))  # doctest: +SKIP
    >>> launch(demo, AppConfig())                                # doctest: +SKIP
"""

from emomon.webapp.config import AppConfig, Settings

__all__ = ["AppConfig", "AppEngine", "Settings", "build_app", "launch"]


def __getattr__(name: str):
    if name == "AppEngine":  # loads torch: imported on first use, so `emomon --help` stays fast
        from emomon.webapp.engine import AppEngine

        return AppEngine
    raise AttributeError(f"module 'emomon.webapp' has no attribute {name!r}")


def build_app(config: AppConfig | None = None, *, engine=None):
    """The page as a `gr.Blocks` (see `emomon.webapp.ui.build_app`)."""
    from emomon.webapp.ui import build_app as _build

    return _build(config, engine=engine)


def launch(demo, config: AppConfig, **kwargs):
    """Queue and serve `demo` as `emomon app` does: localhost unless told otherwise, share only when asked."""
    from emomon.webapp.page import CSS

    demo.queue(max_size=64, default_concurrency_limit=1)
    kwargs["css"] = CSS + kwargs.get("css", "")
    return demo.launch(server_name=config.host, server_port=config.port, share=config.share,
                       max_file_size=f"{config.max_upload_mb}mb", show_error=False, footer_links=["api"],
                       **kwargs)
