"""The temporal head: dilated causal TCN + Transformer encoder with a causal mask, over a track's features.

Every output at position t depends only on positions <= t, so the head runs online with a latency of one
frame. A prediction for frame t reads the track's last `window` features, left-padded with masked zeros when
the track is younger than the window; `step` (streaming, one call for all tracks of a frame) and
`predict_sequence` (offline, every frame of a sequence) both go through `forward` on such windows, so they
agree exactly. Padded positions are zeroed after every block and never attended to, so a short track in a
batch gets the same output as alone.

    >>> import torch
    >>> head = TemporalModel(TemporalConfig(input_dim=8, window=4, hidden=16, heads=2))
    >>> out = head.step(torch.randn(3, 4, 8), torch.ones(3, 4, dtype=torch.bool))
    >>> tuple(out["cat_logits"].shape), tuple(out["vad"].shape)
    ((3, 8), (3, 2))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fusion.models.labels import LabelSpace, label_space
from fusion.temporal.config import TemporalConfig


class CausalConvBlock(nn.Module):
    """Residual dilated causal convolution: left padding only, so frame t never sees t+1."""

    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(hidden, hidden, kernel, dilation=dilation)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H)
        y = self.conv(F.pad(x.transpose(1, 2), (self.pad, 0))).transpose(1, 2)
        return self.norm(x + self.drop(F.gelu(y)))


class EncoderLayer(nn.Module):
    """A pre-norm Transformer encoder layer whose attention takes an additive per-head mask (written out rather
    than `nn.TransformerEncoderLayer`, whose inference fast path returns NaN for such masks in eval mode)."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.ff = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(2 * hidden, hidden))
        self.drop = nn.Dropout(dropout)
        self.p = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x (B, T, H), mask (B, heads, T, T); `last_only`: only the last position's output (B, 1, H), what
        streaming needs; its keys and values still come from every position."""
        b, t, h = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        if last_only:
            q, mask, x = q[:, :, -1:], mask[:, :, -1:], x[:, -1:]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, x.shape[1], h)))
        return x + self.drop(self.ff(self.norm2(x)))


class TemporalModel(nn.Module):
    """Per-frame features (B, T, D) + validity mask (B, T) -> per-position category logits and dimensions."""

    def __init__(self, config: TemporalConfig, labels: LabelSpace | None = None):
        super().__init__()
        self.config = config
        self.labels = labels or label_space(config.labels)
        h = config.hidden
        self.inp = nn.Sequential(nn.LayerNorm(config.input_dim), nn.Linear(config.input_dim, h), nn.GELU(),
                                 nn.Dropout(config.dropout))
        tcn = config.kind in ("tcn", "tcn_transformer")
        self.tcn = nn.ModuleList([CausalConvBlock(h, config.kernel, 2 ** i, config.dropout)
                                  for i in range(config.tcn_levels)] if tcn else [])
        layers = config.transformer_layers if "transformer" in config.kind else 0
        self.transformer = nn.ModuleList([EncoderLayer(h, config.heads, config.dropout) for _ in range(layers)])
        self.position = nn.Parameter(torch.zeros(config.window, h)) if self.transformer else None
        # A learned bias per head and distance (t - s) on the attention scores (relative positions, as in T5/ALiBi):
        # "look k frames back" is then one number, the same at every position, which is what lets attention
        # compare a frame with its predecessors (a rate of change) rather than only average them.
        self.distance_bias = nn.Parameter(torch.zeros(config.heads, config.window)) if self.transformer else None
        if self.position is not None:
            nn.init.normal_(self.position, std=0.02)
        self.norm = nn.LayerNorm(h)
        self.cat_head = nn.Linear(h, len(self.labels.categories))
        self.dim_head = nn.Linear(h, len(self.labels.dimensions))
        dims = self.labels.dimensions
        self.register_buffer("dim_low", torch.tensor([d.low for d in dims], dtype=torch.float32))
        self.register_buffer("dim_span", torch.tensor([d.high - d.low for d in dims], dtype=torch.float32))

    def _mask(self, valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, heads, T, T) additive attention mask: the distance bias where a query may look, "blocked" at future
        positions and padded keys; a position always sees itself (a padded query would otherwise have no key
        at all and give NaN)."""
        b, t = valid.shape
        causal = torch.ones(t, t, dtype=torch.bool, device=valid.device).tril()
        allowed = causal & valid[:, None, :]
        allowed |= torch.eye(t, dtype=torch.bool, device=valid.device)
        idx = torch.arange(t, device=valid.device)
        bias = self.distance_bias[:, (idx[:, None] - idx[None, :]).clamp(min=0)].to(dtype)   # (H, T, T)
        return bias.unsqueeze(0).expand(b, -1, -1, -1).masked_fill(~allowed[:, None], float("-inf"))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None, last_only: bool = False
                ) -> dict[str, torch.Tensor]:
        """x (B, T, D) with T <= window (positions are counted from the window's end); valid (B, T) bool.
        `last_only` computes the outputs of the last position only (B, 1, ...), the same numbers for less work."""
        b, t, _ = x.shape
        if valid is None:
            valid = torch.ones(b, t, dtype=torch.bool, device=x.device)
        keep = valid.unsqueeze(-1).to(x.dtype)
        h = self.inp(x * keep) * keep
        for block in self.tcn:
            h = block(h) * keep
        if self.transformer:
            h = h + self.position[self.config.window - t:]
            mask = self._mask(valid, h.dtype)
            for i, layer in enumerate(self.transformer):
                last = last_only and i == len(self.transformer) - 1
                h = layer(h, mask, last_only=last) * (keep[:, -1:] if last else keep)
        elif last_only:
            h = h[:, -1:]
        h = self.norm(h)
        vad = self.dim_low + self.dim_span * torch.sigmoid(self.dim_head(h))
        return {"cat_logits": self.cat_head(h), "vad": vad}

    def probabilities(self, cat_logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(cat_logits) if self.labels.multi_label else torch.softmax(cat_logits, dim=-1)

    @torch.inference_mode()
    def step(self, windows: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """Streaming: (B, window, D) left-padded windows, one per track -> the outputs at each window's end."""
        out = self.forward(windows, valid, last_only=True)
        return {"probs": self.probabilities(out["cat_logits"][:, -1]), "vad": out["vad"][:, -1]}

    @torch.inference_mode()
    def predict_sequence(self, features: torch.Tensor, chunk: int = 256) -> dict[str, torch.Tensor]:
        """Offline: every frame of one track's sequence (T, D), each from its own last `window` frames."""
        w = self.config.window
        padded = torch.cat([features.new_zeros(w - 1, features.shape[1]), features])
        mask = torch.arange(len(padded), device=features.device) >= w - 1
        windows = padded.unfold(0, w, 1).permute(0, 2, 1)        # (T, w, D)
        valid = mask.unfold(0, w, 1)                                # (T, w)
        parts = [self.step(windows[i:i + chunk], valid[i:i + chunk]) for i in range(0, len(features), chunk)]
        return {k: torch.cat([p[k] for p in parts]) for k in ("probs", "vad")}
