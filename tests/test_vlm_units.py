"""The VLM backend's parts (fusion.vlm): specs, prompt and schema, lenient answer parsing, the answer cache, and
the OpenAI-compatible HTTP client against a real local server (tests/vlm_server.py): structured output on and
off, prose around the JSON, a malformed answer, invalid fields, a slow answer past the timeout, a 500, a refused
connection, the API key and the concurrency limit."""

from __future__ import annotations

import json
import logging
import socket
import threading

import numpy as np
import pytest
from vlm_server import FakeVlmServer

from emomon.kernel import InputError
from fusion.models.labels import ABAW, EMOTIC
from fusion.vlm import (
    AnswerCache,
    VlmConfig,
    VlmEmotionModel,
    build_prompt,
    load_vlm,
    parse_answer,
    parse_vlm_spec,
)

BRIGHT = np.full((120, 160, 3), 210, np.uint8)
DARK = np.full((120, 160, 3), 30, np.uint8)
BOX = [20, 10, 120, 110]
FAST = VlmConfig(timeout_s=2, retries=1, backoff_s=0.05)


@pytest.fixture
def server():
    s = FakeVlmServer()
    yield s
    s.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- specs --------------------------------------------------------------------------------------------------------
def test_spec_forms_and_credentials_never_shown(tmp_path):
    spec = parse_vlm_spec("vlm:https://me:secret@gpu.lan:8000/v1/#Qwen/Qwen2-VL-7B-Instruct")
    assert (spec.kind, spec.target, spec.model) == ("http", "https://me:secret@gpu.lan:8000/v1",
                                                   "Qwen/Qwen2-VL-7B-Instruct")
    assert "secret" not in spec.describe() and spec.describe() == "vlm:https://gpu.lan:8000/v1#Qwen/Qwen2-VL-7B-Instruct"
    hf = parse_vlm_spec(f"vlm:hf:{tmp_path}")
    assert hf.kind == "hf" and hf.describe() == f"vlm:hf:{tmp_path.name}"  # never the server's folders


@pytest.mark.parametrize("text, says", [
    ("vlm:http://host:8000/v1", "names no model"),
    ("vlm:ftp://host/v1#m", r"http\(s\) URL"),
    ("vlm:http://host:port/v1#m", "port"),
    ("vlm:hf:/no/such/folder", "not found"),
    ("vlm:hf:", "names no model folder"),
    ("qwen", "is not a VLM spec"),
])
def test_bad_specs_are_one_line_input_errors(text, says):
    with pytest.raises(InputError, match=says) as exc:
        parse_vlm_spec(text)
    assert "\n" not in str(exc.value)


# -- prompt and schema --------------------------------------------------------------------------------------------
def test_prompt_and_schema_follow_the_label_space():
    emotic, abaw = build_prompt(EMOTIC), build_prompt(ABAW)
    assert emotic.schema["properties"]["categories"]["items"]["enum"] == list(EMOTIC.categories)
    assert emotic.schema["properties"]["dominance"] == {"type": "number", "minimum": 1.0, "maximum": 10.0}
    assert "dominance" not in abaw.schema["properties"] and abaw.schema["properties"]["valence"]["minimum"] == -1
    assert "the one category" in abaw.text and "all categories that apply" in emotic.text
    assert all(c in emotic.text for c in EMOTIC.categories) and "red box" in emotic.text
    assert emotic.digest != abaw.digest != build_prompt(EMOTIC, crop=True).digest


# -- parsing ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, categories, dims, dropped", [
    ('{"categories": ["Peace"], "valence": 7, "arousal": 3, "dominance": 6, "rationale": "calm"}',
     ("Peace",), {"valence": 7.0, "arousal": 3.0, "dominance": 6.0}, ()),
    ('Sure:\n```json\n{"categories": "peace, DOUBT", "vad": {"Valence": "7.5/10", "arousal": 3, "dominance": 6}}'
     '\n```', ("Doubt/Confusion", "Peace"), {"valence": 7.5, "arousal": 3.0, "dominance": 6.0}, ()),
    ('{"categories": ["Joy", "Fear"], "valence": 0, "arousal": "very", "dominance": 11}',
     ("Fear",), {}, ("unknown category Joy", "valence 0 outside 1-10", "arousal 'very' is not a number",
                     "dominance 11 outside 1-10")),
    ('{"valence": 5}', (), {"valence": 5.0}, ("missing categories", "missing arousal", "missing dominance")),
    ("I cannot tell.", (), {}, ("no JSON object in the answer ('I cannot tell.')",)),
    ('{"a": 1} then {"categories": {"Pain": true, "Fear": 0.2}, "valence": 2, "arousal": 8, "dominance": 2}',
     ("Pain",), {"valence": 2.0, "arousal": 8.0, "dominance": 2.0}, ()),
    ("", (), {}, ("no JSON object in the answer ('')",)),
    ('{"categories": [null, 3, {"name": "Anger"}], "valence": NaN, "arousal": true, "dominance": []}',
     ("Anger",), {}, ("unknown category None", "unknown category 3", "valence 'nan' is not a number",
                      "arousal 'True' is not a number", "dominance '[]' is not a number")),
])
def test_parsing_keeps_what_is_valid_and_says_what_was_dropped(text, categories, dims, dropped, caplog):
    with caplog.at_level(logging.INFO, logger="fusion.vlm.answer"):
        answer = parse_answer(text, EMOTIC, "m")
    assert answer.ok and answer.categories == categories and answer.dimensions == dims
    assert answer.dropped == dropped
    assert all(reason in caplog.text for reason in dropped)
    assert json.dumps(answer.record(), allow_nan=False)  # always valid JSON


def test_single_label_spaces_keep_one_category():
    answer = parse_answer('{"categories": ["Fear", "Anger"], "valence": 0.2, "arousal": -2}', ABAW)
    assert answer.categories == ("Fear",) and answer.dimensions == {"valence": 0.2}
    assert any("where one is asked for" in d for d in answer.dropped) and any("arousal -2" in d for d in answer.dropped)
    assert answer.scores().tolist() == [0, 0, 0, 1, 0, 0, 0, 0]


# -- the HTTP client against a real server ------------------------------------------------------------------------
def test_structured_output_answers_depend_on_the_image(server):
    model = load_vlm(server.spec(), FAST)
    bright, dark = model.ask(BRIGHT, BOX, frame_index=7, time_s=0.5), model.ask(DARK, BOX)
    assert bright.categories == ("Excitement", "Happiness") and dark.categories == ("Sadness",)
    assert bright.dimensions["valence"] > 7 > 3 > dark.dimensions["valence"]
    assert bright.record()["frame"] == 7 and bright.latency_s > 0 and bright.rationale.startswith("brightness")
    body = server.requests[0]
    assert body["response_format"]["json_schema"]["schema"] == model.prompt.schema
    assert body["model"] == "test-vlm" and body["temperature"] == 0
    images = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_a_server_without_structured_output_gets_plain_prompting(caplog):
    server = FakeVlmServer(schema=False, reply="prose")
    try:
        model = load_vlm(server.spec(), FAST)
        first, second = model.ask(BRIGHT, BOX), model.ask(DARK, BOX)
    finally:
        server.close()
    assert first.categories == ("Excitement", "Happiness") and second.categories == ("Sadness",)
    assert ["response_format" in r for r in server.requests] == [True, False, False]  # asked once, then never
    assert caplog.text.count("rejected structured output") == 1


@pytest.mark.parametrize("reply, categories, dropped", [
    ("malformed", (), "no JSON object"),
    ("invalid", ("Happiness",), "unknown category Joyfulness"),
])
def test_malformed_and_invalid_answers_are_answers_with_reasons(reply, categories, dropped):
    server = FakeVlmServer(reply=reply)
    try:
        answer = load_vlm(server.spec(), FAST).ask(BRIGHT, BOX)
    finally:
        server.close()
    assert answer.ok and answer.categories == categories and any(dropped in d for d in answer.dropped)


@pytest.mark.parametrize("case", ["slow", "500", "refused"])
def test_no_answer_is_an_error_on_the_answer_after_retries(case):
    server = {"slow": lambda: FakeVlmServer(delay_s=1.0), "500": lambda: FakeVlmServer(status=500),
              "refused": lambda: None}[case]()
    spec = server.spec() if server else f"vlm:http://127.0.0.1:{closed_port()}/v1#m"
    try:
        answer = load_vlm(spec, VlmConfig(timeout_s=0.3, retries=2, backoff_s=0.01)).ask(BRIGHT, BOX)
    finally:
        if server:
            server.close()
    assert not answer.ok and answer.categories == ()
    assert {"slow": "no answer within 0.3 s", "500": "HTTP 500", "refused": "Connection refused"}[case] in answer.error
    if server:
        assert len(server.requests) == 3  # one try and two retries
    assert "vlm" in answer.record()["model"] and answer.record()["error"]


def test_a_refused_request_is_not_retried():
    server = FakeVlmServer(status=401)
    try:
        answer = load_vlm(server.spec(), FAST).ask(BRIGHT, BOX)
    finally:
        server.close()
    assert "HTTP 401" in answer.error and len(server.requests) == 1


def test_api_key_from_the_environment_is_sent_and_never_written(server, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("MY_VLM_KEY", "sk-very-secret")
    model = load_vlm(server.spec(), VlmConfig(api_key_env="MY_VLM_KEY"), cache_dir=tmp_path)
    with caplog.at_level(logging.DEBUG):
        answer = model.ask(BRIGHT, BOX)
    assert server.headers[0]["Authorization"] == "Bearer sk-very-secret"
    written = json.dumps(answer.record()) + caplog.text + "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert "sk-very-secret" not in written
    monkeypatch.delenv("MY_VLM_KEY")
    load_vlm(server.spec()).ask(DARK, BOX)
    assert "Authorization" not in server.headers[1]


def test_concurrency_limit_holds_across_threads():
    server = FakeVlmServer(delay_s=0.15)
    inside, most = [0], [0]
    lock = threading.Lock()
    model = load_vlm(server.spec(), VlmConfig(concurrency=2))
    original = model.client._complete

    def counting(*args):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            return original(*args)
        finally:
            with lock:
                inside[0] -= 1

    model.client._complete = counting
    try:
        results = model.predict(BRIGHT, [BOX] * 3) + VlmEmotionModel(model.spec, VlmConfig(concurrency=2),
                                                                    client=model.client).predict(DARK, [BOX] * 3)
    finally:
        server.close()
    assert most[0] == 2 and len(server.requests) == 6
    assert [p.top1 for p in results] == ["Excitement"] * 3 + ["Sadness"] * 3


def test_predict_gives_person_results_with_the_answer(server):
    people = load_vlm(server.spec(), FAST).predict(BRIGHT, [BOX, [0, 0, 60, 60]])
    record = people[0].record()
    assert record["vlm"]["categories"] == ["Excitement", "Happiness"] and record["emotions"]["Happiness"] == 1.0
    assert record["vad"]["valence"] == record["vlm"]["vad"]["valence"] and people[1].index == 1


# -- the answer cache -----------------------------------------------------------------------------------------------
def test_cache_is_keyed_by_image_box_model_and_prompt(server, tmp_path):
    def model(name="test-vlm", crop=False):
        return load_vlm(server.spec(name), VlmConfig(crop=crop), cache_dir=tmp_path)

    first = model().ask(BRIGHT, BOX)
    again = model().ask(BRIGHT, BOX, frame_index=3)
    assert not first.cached and again.cached and again.frame == 3 and len(server.requests) == 1
    assert again.categories == first.categories and again.dimensions == first.dimensions
    model().ask(DARK, BOX)                       # another image
    model().ask(BRIGHT, [20, 10, 121, 110])      # another box
    model("other-vlm").ask(BRIGHT, BOX)          # another model
    model(crop=True).ask(BRIGHT, BOX)            # another prompt (two images)
    assert len(server.requests) == 5
    assert len(server.requests[-1]["messages"][-1]["content"]) == 3  # frame, crop, text


def test_failures_are_not_cached_and_torn_files_are_asked_again(tmp_path):
    cache = AnswerCache(tmp_path)
    port = closed_port()
    assert not load_vlm(f"vlm:http://127.0.0.1:{port}/v1#m", VlmConfig(retries=0), cache_dir=tmp_path).ask(
        BRIGHT, BOX).ok
    assert not list(tmp_path.rglob("*.json"))
    server = FakeVlmServer()
    try:
        load_vlm(server.spec(), cache_dir=tmp_path).ask(BRIGHT, BOX)
        (path,) = tmp_path.rglob("*.json")
        path.write_text('{"categ')
        answer = load_vlm(server.spec(), cache_dir=tmp_path).ask(BRIGHT, BOX)
    finally:
        server.close()
    assert answer.ok and not answer.cached and len(server.requests) == 2 and json.loads(path.read_text())
    assert cache.get("0" * 64, EMOTIC) is None


def test_box_outside_the_frame_is_an_input_error(server):
    with pytest.raises(InputError, match="no pixels inside"):
        load_vlm(server.spec()).ask(BRIGHT, [500, 500, 600, 600])
    assert not server.requests
