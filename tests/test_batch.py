"""`emomon batch` (issue 15): a corpus in one process and on a local Ray cluster, against `emomon run`.

Short clips cut from the street video, the trained test model, one Ray cluster for the session (conftest's
`ray_cluster`). What is checked: batch --ray gives each video the JSONL `emomon run` gives it; a corrupt video is
recorded in the manifest and the others finish; workers killed mid-video are replaced and the job finishes with
the same outputs; a re-run resumes (finished videos skipped, unfinished and torn ones redone); the corpus table
has one row per track of the summaries.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TRAINED_MODEL, shared_file

from benchmarks.ray_batch import cut_clip
from emomon.cli import main

CLIPS = {"c0": 0, "c1": 200, "c2": 400}  # name: first frame in the street video
FRAMES = 8


def model_args() -> list[str]:
    return ["--emotion-model", str(TRAINED_MODEL), "--detector-weights", str(shared_file("weights/yolo11n-pose.pt"))]




@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    video = shared_file("data/street_crossing.mp4")
    out = {name: cut_clip(video, start, FRAMES, folder / f"{name}.mp4") for name, start in CLIPS.items()}
    out["bad"] = folder / "bad.mp4"
    out["bad"].write_bytes(b"this is not a video" * 20)
    return out


def records(path: Path) -> list[dict]:
    """The emotion content of a JSONL: every record without its wall-clock field."""
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("utc", None)
        out.append(record)
    return out


@pytest.fixture(scope="module")
def run_records(clips, tmp_path_factory) -> dict[str, list[dict]]:
    """What `emomon run` writes for each clip."""
    folder = tmp_path_factory.mktemp("run")
    out = {}
    for name in CLIPS:
        jsonl = folder / f"{name}.jsonl"
        assert main(["run", "--source", str(clips[name]), "--jsonl", str(jsonl), "--no-progress", *model_args()]) == 0
        out[name] = records(jsonl)
        assert len(out[name]) == FRAMES and any(r["persons"] for r in out[name])
    return out


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def ray_batch(clips, ray_cluster, tmp_path_factory):
    """batch --ray over a list file naming the three clips and the corrupt one."""
    folder = tmp_path_factory.mktemp("ray-batch")
    listing = folder / "videos.txt"
    listing.write_text("# the corpus\n" + "\n".join(str(clips[n]) for n in (*CLIPS, "bad")) + "\n")
    out = folder / "out"
    code = main(["batch", str(listing), "--ray", "--workers", "2", "--out", str(out), "--no-progress", *model_args()])
    return code, out


def test_batch_on_ray_gives_each_video_the_jsonl_of_emomon_run(ray_batch, run_records):
    _, out = ray_batch
    for name in CLIPS:
        assert records(out / name / "frames.jsonl") == run_records[name], name
        assert (out / name / "frames.csv").is_file() and (out / name / "summary.json").is_file()
    assert not (out / ".partial").exists()


def test_a_corrupt_video_is_recorded_with_its_reason_and_the_others_finish(ray_batch, capsys):
    code, out = ray_batch
    assert code == 2
    entries = {Path(e["source"]).stem: e for e in manifest(out)}
    assert entries["bad"]["status"] == "failed" and "cannot open video" in entries["bad"]["reason"]
    assert not (out / "bad").exists()
    assert all(entries[n]["status"] == "done" and entries[n]["frames"] == FRAMES for n in CLIPS)


def test_the_corpus_table_has_a_row_per_track_of_the_summaries(ray_batch):
    _, out = ray_batch
    table = pd.read_parquet(out / "tracks.parquet")
    expected = []
    for name in CLIPS:
        for track in json.loads((out / name / "summary.json").read_text())["tracks"]:
            expected.append((name, track["track_id"], track["frames"], track["dominant_emotion"],
                             track["mean_vad"]["valence"]))
    got = list(zip(table.video, table.track_id, table.frames, table.dominant_emotion, table.mean_valence))
    assert sorted(got) == sorted(expected) and len(got) > 3
    assert pd.read_csv(out / "tracks.csv").equals(table)


def test_workers_killed_mid_video_are_replaced_and_the_outputs_are_the_same(clips, ray_cluster, run_records,
                                                                            tmp_path):
    out = tmp_path / "out"
    result = {}
    job = threading.Thread(target=lambda: result.setdefault("code", main(
        ["batch", *(str(clips[n]) for n in CLIPS), "--ray", "--workers", "1", "--out", str(out), "--no-progress",
         *model_args()])))
    job.start()
    deadline = time.monotonic() + 120
    killed = []
    while not killed and time.monotonic() < deadline and job.is_alive():
        partial = [p for p in (out / ".partial").glob("*/frames.jsonl") if 0 < len(p.read_bytes().splitlines())
                   < FRAMES] if (out / ".partial").exists() else []
        if partial:  # the worker is mid-video: kill it (ray.kill ends its process at once, like SIGKILL)
            for actor in ray_cluster.util.list_named_actors(all_namespaces=True):
                if actor["name"].startswith("emomon-batch-"):
                    ray_cluster.kill(ray_cluster.get_actor(actor["name"], namespace=actor["namespace"]))
                    killed.append(actor["name"])
        time.sleep(0.02)
    job.join(timeout=180)
    assert killed and result.get("code") == 0
    entries = manifest(out)
    assert sorted(Path(e["source"]).stem for e in entries) == sorted(CLIPS)  # each video once, all done
    assert all(e["status"] == "done" for e in entries) and max(e["attempts"] for e in entries) >= 2
    for name in CLIPS:
        assert records(out / name / "frames.jsonl") == run_records[name], name
    assert not (out / ".partial").exists()


def test_a_rerun_skips_finished_videos_and_redoes_torn_ones(clips, run_records, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(clips["c0"]), "--out", str(out), "--no-progress", *model_args()]) == 0
    c0 = (out / "c0" / "frames.jsonl").stat()
    # An interrupted run: c1 half written (a partial folder), c2 renamed into place but never entered in the
    # manifest, whose last line was cut short when the process died.
    (out / ".partial" / "c1.dead").mkdir(parents=True)
    (out / ".partial" / "c1.dead" / "frames.jsonl").write_text('{"frame": 0}\n')
    (out / "c2").mkdir()
    (out / "c2" / "frames.jsonl").write_text("stale\n")
    with open(out / "manifest.jsonl", "a") as f:
        f.write('{"source": "' + str(clips["c2"]) + '", "status": "do')
    capsys.readouterr()
    assert main(["batch", *(str(clips[n]) for n in CLIPS), "--out", str(out), "--no-progress", *model_args()]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["skipped"], report["done"], report["failed"]) == (1, 2, 0)
    assert (out / "c0" / "frames.jsonl").stat().st_mtime_ns == c0.st_mtime_ns  # not redone
    entries = manifest(out)  # every line whole JSON again
    assert [Path(e["source"]).stem for e in entries] == ["c0", "c1", "c2"]
    for name in CLIPS:
        assert records(out / name / "frames.jsonl") == run_records[name], name
    assert not (out / ".partial").exists()
    assert len(pd.read_csv(out / "tracks.csv").video.unique()) == 3


def test_inputs_folders_globs_and_list_files_name_each_video_once(tmp_path):
    from emomon.cluster import expand_inputs
    from emomon.kernel import InputError

    for rel in ("a/clip.mp4", "b/clip.mp4", "b/other.MOV", "b/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text("# comment\n\na/clip.mp4\nmissing.mp4\nhttp://cam.example/x/street.mp4\n")
    items = expand_inputs([str(tmp_path / "b"), str(tmp_path / "a" / "*.mp4"), str(listing)])
    names = {Path(i.source).name if "://" not in i.source else i.source: i.name for i in items}
    assert len(items) == 5  # a/clip.mp4 once, the missing listed file kept (it fails as that video)
    assert names["other.MOV"] == "other" and names["http://cam.example/x/street.mp4"] == "street"
    clip_names = [i.name for i in items if i.source.endswith("clip.mp4")]
    assert len(set(clip_names)) == 2 and all(n.startswith("clip-") for n in clip_names)
    for bad in (str(tmp_path / "nope.mp4"), str(tmp_path / "*.avi"), str(tmp_path / "a" / "..")):
        if bad.endswith(".."):
            continue
        with pytest.raises(InputError):
            expand_inputs([bad])


def test_the_manifest_cuts_a_torn_last_line_and_holds_a_lock(tmp_path):
    from emomon.cluster import Manifest
    from emomon.kernel import InputError

    with Manifest(tmp_path) as m:
        m.append({"source": "a.mp4", "name": "a", "status": "done"})
    with open(tmp_path / "manifest.jsonl", "ab") as f:
        f.write(b'{"source": "b.mp4", "na')
    with Manifest(tmp_path) as m:
        assert list(m.entries) == ["a.mp4"]
        assert m.finished("a.mp4") is None  # its folder is gone: not finished
        (tmp_path / "a").mkdir()
        assert m.finished("a.mp4")["status"] == "done"
        with pytest.raises(InputError, match="another emomon batch"):
            Manifest(tmp_path)
        m.append({"source": "b.mp4", "name": "b", "status": "failed", "reason": "x"})
    assert [json.loads(line)["source"] for line in (tmp_path / "manifest.jsonl").read_text().splitlines()] == \
        ["a.mp4", "b.mp4"]


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch, clips, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code = main(["batch", str(clips["c0"]), "--ray", "--out", str(tmp_path / "o"), *model_args()])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'emomon[ray]'" in err[0]


def test_ray_address_or_input_after_the_flag(tmp_path, capsys):
    from emomon.cluster import is_address

    assert is_address("auto") and is_address("10.0.0.1:6379") and is_address("ray://head:10001")
    assert not is_address("clip.mp4") and not is_address(str(tmp_path / "videos"))
    assert main(["batch", "--ray", str(tmp_path / "nothing.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "no such video" in capsys.readouterr().err  # taken as an input, not as a cluster address


def test_the_core_install_never_imports_ray():
    """Ray is an extra: the CLI, the batch driver and the one-process pool load without it."""
    import subprocess

    code = ("import sys; from emomon.cli import build_parser; build_parser().parse_args(['batch', 'x', '--out', 'o']);"
            " import emomon.cluster.batch, emomon.cluster.pools, emomon.cluster.serve_app, emomon.commands.serve;"
            " print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
