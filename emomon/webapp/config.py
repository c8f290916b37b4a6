"""What `emomon app` is started with (`AppConfig`) and what each request of the page sets (`Settings`).

Cheap to import (no torch): the CLI reads the server defaults from here to build `emomon app`'s flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emomon.kernel import InputError
from emomon.pipeline.config import MonitorConfig, PipelineConfig, PrivacyConfig, ReuseConfig
from emomon.pipeline.smoothing import SmoothingConfig

_DEFAULT = MonitorConfig()  # the page's controls start from the same defaults as `emomon run`...


def app_monitor() -> MonitorConfig:
    """...except that the app hides faces unless told otherwise: its pictures go to whoever opens the page."""
    return MonitorConfig(pipeline=PipelineConfig(privacy=PrivacyConfig(anonymize="blur")))


@dataclass
class AppConfig:
    """Everything `emomon app` is started with: the models and start settings (`monitor`, as `emomon run`
    takes them) and the server's own options. The page's controls start from these values."""

    monitor: MonitorConfig = field(default_factory=app_monitor)
    extra_models: list[str] = field(default_factory=list)  # offered in the page, loaded on first use
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    max_upload_mb: int = 200
    server_sources: bool = False     # let users type a server-side path or URL in the Video tab
    webcam_sessions: int = 2         # webcam streams served at once; more wait in the queue
    webcam_time_limit: int = 600     # seconds one stream may hold its slot before it is re-queued
    video_seconds: float = 30.0      # default "process the first N seconds" of a video (0 = all)
    keep_minutes: float = 60.0       # a session's uploads and results are deleted when it closes, or after this

    @property
    def emotion_model(self) -> str:
        """The start model (the page's default choice)."""
        return self.monitor.model.emotion_model


@dataclass(frozen=True)
class Settings:
    """The page's per-request settings."""

    conf: float = _DEFAULT.detector.conf
    top_k: int = _DEFAULT.pipeline.top_k
    smoothing: float = round(1.0 - _DEFAULT.pipeline.smoothing.alpha, 2)  # 0 = raw scores; towards 1 = steadier
    scene_every: int = _DEFAULT.pipeline.reuse.scene_every
    refresh_every: int = _DEFAULT.pipeline.reuse.refresh_every
    model: str = _DEFAULT.model.emotion_model
    anonymize: str = app_monitor().pipeline.privacy.anonymize  # none | blur | pixelate | box

    def pipeline_config(self, base: AppConfig) -> PipelineConfig:
        try:
            reuse = ReuseConfig(scene_every=int(self.scene_every), refresh_every=int(self.refresh_every),
                                scene_change=base.monitor.pipeline.reuse.scene_change)
            strength = float(self.smoothing)
            smoothing = (SmoothingConfig("none") if strength <= 0 else
                         SmoothingConfig("ema", alpha=max(0.05, min(1.0, 1.0 - strength))))
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad setting: {exc}") from None
        try:
            privacy = PrivacyConfig(str(self.anonymize), base.monitor.pipeline.privacy.keypoints)
        except ValueError as exc:
            raise InputError(f"bad setting: {exc}") from None
        return PipelineConfig(reuse=reuse, smoothing=smoothing, top_k=max(1, min(10, int(self.top_k))),
                              privacy=privacy)

    @classmethod
    def defaults(cls, config: AppConfig) -> Settings:
        m = config.monitor
        smooth = m.pipeline.smoothing
        strength = 0.0 if smooth.mode == "none" else round(1.0 - smooth.alpha, 2)
        return cls(conf=m.detector.conf, top_k=m.pipeline.top_k, smoothing=strength,
                   scene_every=m.pipeline.reuse.scene_every, refresh_every=m.pipeline.reuse.refresh_every,
                   model=m.model.emotion_model, anonymize=m.pipeline.privacy.anonymize)
