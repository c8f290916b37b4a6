"""A local vision-language model through transformers (`vlm:hf:PATH`): the folder's own processor and chat
template, `generate` with greedy decoding. Needs `pip install 'emomon[vlm]'`; transformers is imported only here,
when such a model is asked for, so the core install never loads it."""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

from emomon.kernel import InputError, first_line
from fusion.vlm.config import VlmConfig
from fusion.vlm.errors import VlmError
from fusion.vlm.prompt import Prompt
from fusion.vlm.spec import VlmSpec

log = logging.getLogger(__name__)

MISSING = "vlm:hf models need transformers: pip install 'emomon[vlm]'"


class TransformersClient:
    """`complete(prompt, images)` -> the generated text. One `generate` at a time (it uses the whole device)."""

    def __init__(self, spec: VlmSpec, config: VlmConfig | None = None, device: str = "cpu"):
        try:
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError:
            raise InputError(MISSING) from None
        self.spec, self.config, self.device = spec, config or VlmConfig(), device
        try:
            self.processor = AutoProcessor.from_pretrained(spec.target)
            self.model = AutoModelForImageTextToText.from_pretrained(spec.target).to(device).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"cannot load the VLM in '{spec.target}': {first_line(exc)}") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        pass

    def complete(self, prompt: Prompt, images: list[bytes]) -> str:
        import torch
        from PIL import Image

        pictures = [Image.fromarray(cv2.cvtColor(cv2.imdecode(np.frombuffer(im, np.uint8), cv2.IMREAD_COLOR),
                                                 cv2.COLOR_BGR2RGB)) for im in images]
        # The system text goes into the user turn: many VLM chat templates have no system role.
        messages = [{"role": "user", "content": [*({"type": "image"} for _ in pictures),
                                                 {"type": "text", "text": f"{prompt.system}\n\n{prompt.text}"}]}]
        with self._lock:
            try:
                text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                inputs = self.processor(images=pictures, text=text, return_tensors="pt").to(self.device)
                with torch.inference_mode():
                    out = self.model.generate(**inputs, max_new_tokens=self.config.max_tokens, do_sample=False,
                                              max_time=self.config.timeout_s)
            except (ValueError, RuntimeError, TypeError) as exc:
                raise VlmError(f"the local VLM failed: {first_line(exc)}") from None
        return self.processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
