"""The temporal head's config, with its defaults in one place (`emomon train-temporal` flags read them)."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("per_frame", "tcn", "transformer", "tcn_transformer")


@dataclass
class TemporalConfig:
    """A causal sequence model over a track's last `window` per-frame features (the frame model's fused feature).

    `per_frame` is the same heads on one frame (the ablation's baseline); `tcn` stacks dilated causal
    convolutions (dilations 1, 2, 4, ...: receptive field 1 + (kernel - 1) * (2**levels - 1) frames);
    `transformer` is a Transformer encoder with a causal mask and learned positions; `tcn_transformer` (the
    ABAW paper's order) feeds the TCN's output to the Transformer. Every variant is causal, so it runs online.
    """

    kind: str = "tcn_transformer"
    input_dim: int = 512          # the frame model's feature size (set from the features at training time)
    window: int = 32              # frames per prediction (the track's most recent ones)
    hidden: int = 64
    tcn_levels: int = 3
    kernel: int = 3
    transformer_layers: int = 1
    heads: int = 4
    dropout: float = 0.1
    labels: str = "abaw"          # label space name (fusion.models.labels): what the head predicts

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"temporal model kind must be one of {', '.join(KINDS)}, not '{self.kind}'")
        if self.window < 1 or self.hidden < 1 or self.kernel < 1 or self.tcn_levels < 0:
            raise ValueError("window, hidden and kernel must be >= 1 and tcn_levels >= 0")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")

    @property
    def receptive_field(self) -> int:
        """Frames one output can see: the window for Transformer variants, the TCN's reach for `tcn`."""
        if self.kind == "per_frame":
            return 1
        if self.kind == "tcn":
            return min(self.window, 1 + (self.kernel - 1) * (2 ** self.tcn_levels - 1))
        return self.window
