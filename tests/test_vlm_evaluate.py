"""`emomon evaluate --emotion-model vlm:...` on a synthetic EMOTIC-layout set, against a real local
chat-completions server (tests/vlm_server.py): the metrics table and JSON (with the prompt), scored from the
answers of the right persons, and the resumable answer cache (a second run asks nothing, a longer one only the
rest); a server that is down ends it with one line, exit 2."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
from vlm_server import FakeVlmServer

from emomon.cli import main
from fusion.models.labels import EMOTIC
from fusion.vlm import build_prompt, question_images
from training.annotations import load_split
from training.dataset import read_image
from training.synthetic import make_synthetic


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, persons=200, seed=3)  # ~30 test persons
    return root


@pytest.fixture(scope="module")
def server():
    s = FakeVlmServer(schema=False)  # plain prompting: answers parsed from text
    yield s
    s.close()


def expected_answers(synth, n: int) -> list[set[str]]:
    """What the server answers for each of the first n test persons (it looks at the marked frame's brightness)."""
    import cv2

    out = []
    for rec in load_split(synth, "test").records[:n]:
        (jpeg,) = question_images(read_image(rec.image_path), rec.bbox)
        level = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE).mean()
        out.append({"Happiness", "Excitement"} if level > 100 else {"Sadness"})
    return out


def evaluate(synth, spec, cache, limit, json_path=None) -> int:
    args = ["evaluate", "--emotion-model", spec, "--data", str(synth), "--split", "test", "--limit", str(limit),
            "--vlm-cache", str(cache), "--vlm-retries", "0", "--vlm-timeout", "5"]
    return main(args + (["--json", str(json_path)] if json_path else []))


def test_metrics_table_prompt_and_the_cache_on_a_second_run(synth, server, tmp_path, capsys):
    cache = tmp_path / "answers"
    assert evaluate(synth, server.spec(), cache, 20, tmp_path / "r1.json") == 0
    first = capsys.readouterr().out
    assert "20 of 20 persons answered" in first and "0 hits, 20 asked" in first
    assert "mAP (sklearn AP)" in first and "Doubt/Confusion" in first and "answer as a category set" in first
    assert server.answered == 20
    result = json.loads((tmp_path / "r1.json").read_text())
    assert result["prompt"]["user"] == build_prompt(EMOTIC).text and result["prompt"]["schema"]["required"]
    assert result["model"] == server.spec() and result["answered"] == 20 and result["n"] == 20

    # scored from the answers of the right persons
    truth = load_split(synth, "test").records[:20]
    named = expected_answers(synth, 20)
    for category in ("Happiness", "Sadness"):
        c = EMOTIC.categories.index(category)
        said = np.array([category in s for s in named])
        true = np.array([r.categories[c] > 0.5 for r in truth])
        per = result["per_category"][category]
        assert per["precision"] == pytest.approx((said & true).sum() / max(said.sum(), 1))
        if true.any():
            assert per["recall"] == pytest.approx((said & true).sum() / true.sum())
    assert result["mean_categories_named"] == pytest.approx(np.mean([len(s) for s in named]))

    assert evaluate(synth, server.spec(), cache, 20, tmp_path / "r2.json") == 0
    second = capsys.readouterr().out
    assert "20 hits, 0 asked" in second and server.answered == 20  # nothing asked again
    again = json.loads((tmp_path / "r2.json").read_text())
    assert again["per_category"] == result["per_category"] and again["mAP"] == result["mAP"]

    assert evaluate(synth, server.spec(), cache, 25) == 0  # resumable: only the 5 new persons are asked
    assert "20 hits, 5 asked" in capsys.readouterr().out and server.answered == 25


def test_a_server_that_is_down_ends_the_evaluation_with_one_line(synth, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert evaluate(synth, f"vlm:http://127.0.0.1:{port}/v1#m", tmp_path / "c", 20) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in a row got no answer" in err[0] and "Connection refused" in err[0]


def test_export_for_fine_tuning_round_trips_through_the_parser(synth, tmp_path, capsys):
    import cv2

    from fusion.vlm import parse_answer

    assert main(["export-vlm-data", "--data", str(synth), "--split", "train", "--out", str(tmp_path / "ft"),
                 "--limit", "6"]) == 0
    assert "6 persons" in capsys.readouterr().out
    lines = [json.loads(line) for line in (tmp_path / "ft" / "train.jsonl").read_text().splitlines()]
    records = load_split(synth, "train").records[:6]
    assert len(lines) == 6
    for line, rec in zip(lines, records):
        system, user, assistant = line["messages"]
        assert user["content"] == "<image>" + build_prompt(EMOTIC).text and system["role"] == "system"
        answer = parse_answer(assistant["content"], EMOTIC)  # what emomon parses at inference
        assert not answer.dropped and answer.scores().tolist() == rec.categories.tolist()
        assert answer.values() == pytest.approx(rec.vad, abs=0.01)
        (image,) = line["images"]
        marked = cv2.imread(str(tmp_path / "ft" / image))
        x1, y1 = (int(v) for v in rec.bbox[:2])
        b, g, r = marked[min(y1 + 1, marked.shape[0] - 1), min(x1 + 1, marked.shape[1] - 1)].astype(int)
        assert r > 150 and g < 100 and b < 100  # the person's box is drawn in red
    info = json.loads((tmp_path / "ft" / "dataset_info.json").read_text())
    entry = info["emotic_vlm_train"]
    assert entry["file_name"] == "train.jsonl" and entry["formatting"] == "sharegpt"
