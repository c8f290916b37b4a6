"""How emomon talks to a vision-language model (defaults in one place; `--vlm-*` flags and the app read them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class VlmConfig:
    timeout_s: float = 60.0        # one request, connect to last byte; a VLM answer takes seconds on a GPU
    retries: int = 2               # further tries after a timeout, a refused connection, a 429 or a 5xx
    backoff_s: float = 1.0         # the first wait before a retry; doubles each time
    concurrency: int = 2           # requests in flight at once (per model), so one server is never flooded
    api_key_env: str = "EMOMON_VLM_API_KEY"  # the environment variable holding the server's API key, if any
    max_tokens: int = 400          # enough for the JSON answer and a one-sentence rationale
    temperature: float = 0.0       # the same question gets the same answer (and the cache stays meaningful)
    structured: bool = True        # ask for JSON-schema output; servers that reject it get plain prompting
    crop: bool = False             # also send the person's crop as a second image (models that take several)
    max_side: int = 1024           # frames are scaled down to this longest side before they are sent
    jpeg_quality: int = 90

    def __post_init__(self):
        if self.timeout_s <= 0 or self.retries < 0 or self.backoff_s < 0 or self.concurrency < 1:
            raise ValueError("VLM settings: timeout must be > 0, retries and backoff >= 0, concurrency >= 1")
