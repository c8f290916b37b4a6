"""The transformers path (`vlm:hf:PATH`): a tiny randomly initialised LLaVA built here from a config (no
download; its tokenizer built offline with `tokenizers`, its image processor from arguments, a chat template
set), saved as a model folder and loaded the way a user's would be. The real processor and `generate` run end to
end, and parsing turns whatever the random model writes into an answer with its reasons."""

from __future__ import annotations

import json
import sys

import pytest

from emomon.kernel import InputError
from fusion.vlm import VlmConfig, load_vlm

TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
            "{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}{% if add_generation_prompt %}assistant: "
            "{% endif %}")


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    """A LLaVA with a 2-layer CLIP vision tower and a 2-layer Llama over a character vocabulary."""
    pytest.importorskip("transformers", reason="transformers is missing: pip install 'emomon[vlm]'")
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    vocab = {t: i for i, t in enumerate(specials + [chr(i) for i in range(32, 127)] + ["\n"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", extra_special_tokens={"image_token": "<image>"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                  crop_size={"height": 32, "width": 32}),
                               tokenizer=tokenizer, chat_template=TEMPLATE, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=32, patch_size=8, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                                pad_token_id=3, bos_token_id=1, eos_token_id=2),
        image_token_index=vocab["<image>"], vision_feature_layer=-1, image_seq_length=16)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llava")
    LlavaForConditionalGeneration(config).eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_generate_end_to_end_and_parsing_takes_whatever_comes(tiny_vlm, group_photo, monkeypatch):
    import cv2

    model = load_vlm(f"vlm:hf:{tiny_vlm}", VlmConfig(max_tokens=24, crop=True))
    frame = cv2.imread(str(group_photo))
    seen = []
    cls = type(model.client.processor)
    original = cls.__call__

    def spy(self, *args, **kwargs):  # what the real processor got: both images, the prompt with its image tokens
        out = original(self, *args, **kwargs)
        seen.append((len(kwargs["images"]), out["pixel_values"].shape, kwargs["text"]))
        return out

    monkeypatch.setattr(cls, "__call__", spy)
    answers = [model.ask(frame, box) for box in ([40, 60, 200, 500], [400, 80, 560, 520])]
    n_images, pixels, text = seen[0]
    assert n_images == 2 and tuple(pixels) == (2, 3, 32, 32)
    assert text.count("<image>") == 2 and "How does the person in the red box feel?" in text
    for answer in answers:
        assert answer.ok and answer.latency_s > 0 and "tiny-llava" in answer.model
        assert set(answer.categories) <= set(model.labels.categories)
        assert answer.dropped  # 24 random tokens are no valid answer: each gap says why
        assert json.dumps(answer.record(), allow_nan=False)


def test_predict_cli_with_a_local_vlm(tiny_vlm, group_photo, capsys):
    from emomon.cli import main

    assert main(["predict", str(group_photo), "--boxes", "40,60,200,500", "--emotion-model", f"vlm:hf:{tiny_vlm}",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (person,) = out["persons"]
    assert "vlm" in person and person["vlm"]["model"].startswith("vlm:hf:") and str(tiny_vlm) not in json.dumps(out)
    assert out["model"].startswith("vlm:hf:")


def test_without_transformers_one_line_names_the_extra(tiny_vlm, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as in a core install
    with pytest.raises(InputError, match=r"pip install 'emomon\[vlm\]'"):
        load_vlm(f"vlm:hf:{tiny_vlm}")


def test_the_core_never_imports_transformers():
    """transformers is imported in one place, inside a function (`fusion/vlm/hf_client.py`), so only a
    `vlm:hf:` model loads it: no module imports it at its top level or anywhere else."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [*root.glob("*.py"), *(p for d in ("emomon", "fusion", "stream", "detector", "training", "benchmarks")
                                       for p in (root / d).rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "transformers" or n.startswith("transformers.") for n in names):
                found.append((str(path.relative_to(root)), node.col_offset))
    assert found == [("fusion/vlm/hf_client.py", 12)]  # indented: inside TransformersClient.__init__
