"""Vision-language models as an optional emotion backend (design notes 1.4: VLMs on EMOTIC).

    spec      `vlm:http://HOST:PORT/v1#MODEL` (OpenAI-compatible server) or `vlm:hf:PATH` (transformers)
    prompt    the question and the answer's JSON schema, from a label space
    answer    lenient parsing of what the model wrote, checked against the label space (`VlmAnswer`)
    image     the frame with the person's box drawn (and the crop), JPEG
    http_client / hf_client   who asks: httpx to a server, or transformers locally (imported only when used)
    cache     answers on disk keyed by image, box, model and prompt (resumable evaluations)
    model     `VlmEmotionModel`: `ask(frame, box)`, and `predict(frame, boxes)` like `fusion.Predictor`

Never a default and never on the frame loop: `emomon run --vlm` asks it in a background worker
(`emomon.pipeline.vlm_stage`).
"""

from fusion.vlm.answer import VlmAnswer, parse_answer
from fusion.vlm.cache import AnswerCache, answer_key
from fusion.vlm.config import VlmConfig
from fusion.vlm.errors import VlmError, VlmUnavailable
from fusion.vlm.image import question_images
from fusion.vlm.model import VlmEmotionModel, load_vlm
from fusion.vlm.prompt import PROMPT_VERSION, Prompt, answer_schema, build_prompt
from fusion.vlm.spec import VlmSpec, is_vlm_spec, parse_vlm_spec

__all__ = [
    "PROMPT_VERSION", "AnswerCache", "Prompt", "VlmAnswer", "VlmConfig", "VlmEmotionModel", "VlmError", "VlmSpec",
    "VlmUnavailable", "answer_key", "answer_schema", "build_prompt", "is_vlm_spec", "load_vlm", "parse_answer",
    "parse_vlm_spec", "question_images",
]
