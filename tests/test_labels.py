"""Label spaces and user-defined zero-shot labels (`--labels FILE`, EmoCLIP style): the YAML reader, compound
labels, bad files, track-level zero-shot, and outputs that follow the model's label space."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emomon.cli import main
from fusion import PersonResult
from fusion.models.label_file import LabelFileError, read_label_file
from fusion.models.labels import ABAW, EMOTIC, LabelSpace

EXAMPLE = """\
- name: Calm
  description: a relaxed, peaceful person at ease
- name: Tense
  description: a stressed person with a tight, nervous posture
- name: Calm but alert
  components: [Calm, Tense]
"""


@pytest.fixture
def label_file(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text(EXAMPLE)
    return path


@pytest.fixture(scope="module")
def zero_shot_with_labels(tmp_path_factory):
    from fusion import create_model

    path = tmp_path_factory.mktemp("labels") / "labels.yaml"
    path.write_text(EXAMPLE + "- name: Mixed\n  components: [Calm but alert, Tense]\n")
    torch.manual_seed(0)
    # module-scoped: conftest's per-test cache isolation is not in place yet, so the text cache gets its own folder
    return create_model("zero_shot_tiny", pretrained=False, label_set=read_label_file(path),
                        cache_dir=tmp_path_factory.mktemp("text-cache"))


def test_the_issue_example_reads(label_file):
    labels = read_label_file(label_file)
    assert labels.names == ("Calm", "Tense", "Calm but alert")
    assert labels.weights("Calm but alert") == {"Calm": 0.5, "Tense": 0.5}


def test_compound_is_the_mean_of_its_components_text_embeddings(zero_shot_with_labels):
    m = zero_shot_with_labels
    calm, tense, alert, mixed = m.class_text
    assert m.labels.categories == ("Calm", "Tense", "Calm but alert", "Mixed")
    torch.testing.assert_close(alert, F.normalize((calm + tense) / 2, dim=0))
    # a compound of a compound: each component keeps its equal share (Mixed = 1/4 Calm + 3/4 Tense); random tiny
    # text towers embed all texts nearly alike, so the weights are checked as numbers too
    assert m.label_set.weights("Mixed") == {"Calm": 0.25, "Tense": 0.75}
    torch.testing.assert_close(mixed, F.normalize(0.25 * calm + 0.75 * tense, dim=0))
    assert not torch.allclose(calm, tense)


BAD = [
    ("- name: A\n  description: a\n- name: B\n  components: [A, C]\n", "unknown component 'C'"),
    ("- name: A\n  description: '  '\n", "empty description"),
    ("- name: A\n  description:\n", "empty description"),
    ("- name: A\n  description: x\n- name: A\n  description: y\n", "duplicate label name 'A'"),
    ("- name: A\n  components: [B]\n- name: B\n  components: [A]\n", "loop: A -> B -> A"),
    ("- name: A\n  description: x\n  components: [A]\n", "either a description or components"),
    ("- name: A\n", "either a description or components"),
    ("- name: A\n  descripton: typo\n", "unknown key"),
    ("- description: nameless\n", "no name"),
    ("name: A\ndescription: x\n", "non-empty list"),
    ("[]\n", "non-empty list"),
    ("- name: A\n  components: []\n", "non-empty list of label names"),
    ("- name: [unclosed\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_label_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(LabelFileError, match=message) as info:
        read_label_file(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_predict_with_labels_and_bad_files_on_the_command_line(label_file, group_photo, tmp_path, capsys):
    assert main(["predict", str(group_photo), "--boxes", "10,10,200,300", "--emotion-model", "random:zero_shot_tiny",
                 "--labels", str(label_file), "--json"]) == 0
    person = json.loads(capsys.readouterr().out)["persons"][0]
    assert list(person["emotions"]) == ["Calm", "Tense", "Calm but alert"]
    assert person["top"][0][0] in person["emotions"] and list(person["vad"]) == ["valence", "arousal", "dominance"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: A\n  components: [Nope]\n")
    assert main(["predict", str(group_photo), "--emotion-model", "random:zero_shot_tiny", "--labels", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown component 'Nope'" in err
    assert main(["predict", str(group_photo), "--emotion-model", "random:two_stream_tiny",
                 "--labels", str(label_file)]) == 2
    assert "--labels needs the zero-shot model" in capsys.readouterr().err
    assert main(["predict", str(group_photo), "--labels", str(tmp_path / "missing.yaml")]) == 2


def test_track_level_zero_shot_averages_the_recent_frame_embeddings(zero_shot_with_labels):
    """EmoCLIP's video-level embedding: the mean of a track's last frames, renormalised, against the texts."""
    from emomon.pipeline.temporal_stage import TemporalStage
    from fusion.temporal import TrackPool

    model = zero_shot_with_labels
    stage = TemporalStage(TrackPool(model, window=3))
    rng = np.random.default_rng(0)
    frames = [F.normalize(torch.from_numpy(rng.normal(size=model.body_dim).astype(np.float32)), dim=0).numpy()
              for _ in range(5)]
    outs = []
    for n, f in enumerate(frames):
        p = PersonResult(0, np.array([0, 0, 5, 5.0]), np.zeros(4), np.zeros(3), track_id=4, labels=model.labels,
                         feature=f)
        outs.append(stage.apply(n, n / 10, [4], {0: p})[0])
    expected = model.head(F.normalize(torch.from_numpy(np.mean(frames[2:], axis=0)), dim=0)[None])
    np.testing.assert_allclose(outs[-1].probs, model.probabilities(expected["cat_logits"])[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(outs[-1].vad, expected["vad"][0].numpy(), atol=1e-5)
    first = model.head(torch.from_numpy(frames[0])[None])  # a new track: its one frame
    np.testing.assert_allclose(outs[0].probs, model.probabilities(first["cat_logits"])[0].numpy(), atol=1e-6)
    assert outs[-1].top1 in model.labels.categories


def test_outputs_follow_the_label_space(tmp_path):
    """An ABAW person writes its 8 expressions and 2 dimensions everywhere; EMOTIC stays as it was."""
    import cv2
    import supervision as sv

    from emomon.pipeline.outputs import CSV_COLUMNS, CsvWriter, csv_columns
    from emomon.pipeline.overlay import EmotionOverlay
    from emomon.pipeline.summary import RunSummary

    probs = np.array([0.05, 0.1, 0.05, 0.05, 0.5, 0.1, 0.1, 0.05])
    p = PersonResult(0, np.array([10, 10, 90, 200.0]), probs, np.array([0.6, -0.2]), track_id=3, labels=ABAW)
    rec = p.record(top_k=2)
    assert list(rec["emotions"]) == list(ABAW.categories) and rec["top"] == [["Happiness", 0.5], ["Anger", 0.1]]
    assert rec["vad"] == {"valence": 0.6, "arousal": -0.2} and p.top1 == "Happiness"
    assert csv_columns(EMOTIC) == CSV_COLUMNS
    cols = csv_columns(ABAW)
    assert cols[-10:] == ["valence", "arousal", *ABAW.categories]
    writer = CsvWriter(tmp_path / "o.csv", ABAW)
    writer.close()
    assert (tmp_path / "o.csv").read_text().strip() == ",".join(cols)
    summary = RunSummary()
    summary.add(0, 0.0, [p])
    track = summary.to_dict()["tracks"][0]
    assert track["dominant_emotion"] == "Happiness" and track["mean_vad"] == {"valence": 0.6, "arousal": -0.2}
    image = np.zeros((240, 320, 3), np.uint8)
    dets = sv.Detections(xyxy=p.box[None].astype(np.float32), tracker_id=np.array([3]))
    out = EmotionOverlay().annotate(image.copy(), dets, [p])
    assert out.shape == image.shape and cv2.absdiff(out, image).sum() > 0
    # declarations survive a checkpoint round trip, and a known one comes back as the same object
    assert LabelSpace.from_dict(ABAW.to_dict()) is ABAW
    custom = LabelSpace("x", ("a",), (), False)
    assert LabelSpace.from_dict(custom.to_dict()) == custom


def test_the_app_views_follow_the_label_space():
    """The web app's tables and timeline take an ABAW person (two dimensions, 8 expressions) as they take EMOTIC."""
    from emomon.webapp.views import Timeline, live_table, persons_table

    probs = np.array([0.05, 0.1, 0.05, 0.05, 0.5, 0.1, 0.1, 0.05])
    p = PersonResult(0, np.array([10, 10, 90, 200.0]), probs, np.array([0.6, -0.2]), track_id=3, labels=ABAW)
    row = persons_table([p]).iloc[0].tolist()
    assert row[2:4] == [0.6, -0.2] and np.isnan(row[4])  # valence, arousal; no dominance
    assert live_table([p]).shape[0] == 1
    timeline = Timeline()
    timeline.add(0.0, [p])
    timeline.add(0.5, [p.replace(vad=np.array([0.4, 0.1]))])
    emotions, vad = timeline.frames(3, top_n=2)
    assert list(emotions.iloc[:, 2].unique()) == ["Happiness", "Anger"]
    assert sorted(vad.iloc[:, 2].unique()) == ["arousal", "valence"] and len(vad) == 4
