"""`--emotion-model vlm:...` and `--vlm SPEC`: which vision-language model to ask, and where it runs.

    vlm:http://HOST:PORT/v1#MODEL   an OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp's
                                    server, SGLang, LM Studio) and the model name it serves
    vlm:hf:PATH                     a local transformers model folder (processor + weights)

    >>> parse_vlm_spec("vlm:http://127.0.0.1:8000/v1#Qwen/Qwen2-VL-2B-Instruct").model
    'Qwen/Qwen2-VL-2B-Instruct'
    >>> parse_vlm_spec("vlm:https://user:secret@host/v1#m").describe()
    'vlm:https://host/v1#m'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from emomon.kernel import InputError

PREFIX = "vlm:"
FORMS = "vlm:http://HOST:PORT/v1#MODEL (an OpenAI-compatible server) or vlm:hf:PATH (a local transformers model)"


def is_vlm_spec(text: str | None) -> bool:
    return bool(text) and str(text).startswith(PREFIX)


@dataclass(frozen=True)
class VlmSpec:
    kind: str    # "http" (OpenAI-compatible chat completions) or "hf" (local transformers model)
    target: str  # the server's base URL (up to /v1) or the model folder
    model: str   # the model name the server serves; the folder's name for hf

    def describe(self) -> str:
        """The spec for logs and outputs: never the URL's user:password, nor a local model's whole path (the
        app shows this to whoever opens its page)."""
        if self.kind == "hf":
            return f"{PREFIX}hf:{self.model}"
        return f"{PREFIX}{_without_credentials(self.target)}#{self.model}"

    @property
    def cache_name(self) -> str:
        """What identifies the model in the answer cache: the served model name (another host serving the same
        model gives the same answers), the resolved folder for a local model."""
        return f"{self.kind}:{self.model if self.kind == 'http' else self.target}"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_vlm_spec(text: str) -> VlmSpec:
    """The spec's parts; an InputError naming the accepted forms when it is malformed."""
    if not is_vlm_spec(text):
        raise InputError(f"'{text}' is not a VLM spec: use {FORMS}")
    rest = text[len(PREFIX):]
    if rest.startswith("hf:"):
        path = Path(rest[3:]).expanduser()
        if not rest[3:]:
            raise InputError(f"'{text}' names no model folder: use {FORMS}")
        if not path.is_dir():
            raise InputError(f"VLM model folder '{path}' not found (vlm:hf:PATH wants a folder holding a "
                             "transformers model and its processor)")
        return VlmSpec("hf", str(path.resolve()), path.resolve().name)
    url, _, model = rest.partition("#")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"'{text}': the VLM server must be an http(s) URL; use {FORMS}")
    if not model.strip():
        raise InputError(f"'{text}' names no model: add '#MODEL', the name the server serves (use {FORMS})")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise InputError(f"'{text}': the VLM server's port is not a number") from None
    return VlmSpec("http", url.rstrip("/"), model.strip())
