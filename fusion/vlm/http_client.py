"""Chat completions with images over HTTP, for any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server,
SGLang, LM Studio).

httpx rather than the `openai` package: the request is one POST, httpx is already installed with the core, and
the two things that need care here are ours anyway: falling back from `response_format: json_schema` to plain
prompting when a server rejects it (400/422), and telling "the server is down" (retried with backoff, reported
as `VlmUnavailable`) from "the server refused this request" (not retried). The API key comes from an environment
variable (`VlmConfig.api_key_env`) and goes only into the Authorization header: never into logs or outputs.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time

import httpx

from fusion.vlm.config import VlmConfig
from fusion.vlm.errors import VlmError, VlmUnavailable
from fusion.vlm.prompt import Prompt
from fusion.vlm.spec import VlmSpec

log = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class OpenAIChatClient:
    """`complete(prompt, images)` -> the model's text; thread-safe, at most `config.concurrency` requests at once."""

    def __init__(self, spec: VlmSpec, config: VlmConfig | None = None):
        self.spec, self.config = spec, config or VlmConfig()
        self.url = f"{spec.target}/chat/completions"
        key = os.environ.get(self.config.api_key_env, "").strip()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(timeout=httpx.Timeout(self.config.timeout_s), headers=headers,
                                  limits=httpx.Limits(max_connections=self.config.concurrency))
        self._slots = threading.BoundedSemaphore(self.config.concurrency)
        self.structured = self.config.structured  # turned off for good once the server rejects response_format
        self._flip = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def body(self, prompt: Prompt, images: list[bytes], structured: bool) -> dict:
        urls = [f"data:image/jpeg;base64,{base64.b64encode(im).decode()}" for im in images]
        content = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
        content.append({"type": "text", "text": prompt.text})
        body = {"model": self.spec.model, "max_tokens": self.config.max_tokens,
                "temperature": self.config.temperature,
                "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": content}]}
        if structured:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "emotions", "schema": prompt.schema, "strict": True}}
        return body

    def complete(self, prompt: Prompt, images: list[bytes]) -> str:
        with self._slots:
            return self._complete(prompt, images)

    def _complete(self, prompt: Prompt, images: list[bytes]) -> str:
        wait = self.config.backoff_s
        for attempt in range(self.config.retries + 1):
            last = attempt == self.config.retries
            structured = self.structured
            try:
                response = self._http.post(self.url, json=self.body(prompt, images, structured))
            except httpx.TimeoutException:
                problem = f"no answer within {self.config.timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.spec.describe()} ({type(exc).__name__}: {exc})"
            else:
                if response.status_code in (400, 422) and structured:
                    with self._flip:
                        first, self.structured = self.structured, False
                    if first:  # concurrent requests may all be rejected; say it once
                            log.warning("VLM server %s rejected structured output (HTTP %d: %s); asking with plain "
                                    "prompting and parsing the answer from now on", self.spec.describe(),
                                    response.status_code, _detail(response))
                    return self._complete(prompt, images)
                if response.status_code in RETRY_STATUS:
                    problem = f"HTTP {response.status_code} from {self.spec.describe()} ({_detail(response)})"
                elif response.status_code >= 400:
                    raise VlmError(f"the VLM server refused the request: HTTP {response.status_code} "
                                   f"({_detail(response)})")
                else:
                    return _message_text(response)
            if last:
                raise VlmUnavailable(problem)
            log.debug("VLM try %d failed (%s); again in %.1f s", attempt + 1, problem, wait)
            time.sleep(wait)
            wait *= 2
        raise AssertionError("unreachable")


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        text = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:160] if text else response.reason_phrase


def _message_text(response: httpx.Response) -> str:
    """The assistant message's text (a string, or a list of text parts)."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise VlmError(f"the VLM server's reply is not a chat completion ({response.text[:80]!r})") from None
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""
