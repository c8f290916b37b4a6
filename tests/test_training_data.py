"""EMOTIC loading: the official Annotations.mat structure (written here with scipy, several annotators),
both CSV layouts, the synthetic generator, the Dataset, the feature cache, and bad data."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
import scipy.io
import torch

from emomon.kernel import InputError
from fusion import EMOTIC_CATEGORIES, Preprocess
from training.annotations import find_annotations, load_split
from training.dataset import EmoticDataset
from training.features import FeatureCache
from training.synthetic import make_synthetic

CAT = {c: i for i, c in enumerate(EMOTIC_CATEGORIES)}


# ---------------------------------------------------------------------- a tiny Annotations.mat, by hand
def cell(*strings):
    c = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        c[0, i] = s
    return c


def struct_array(*rows):
    fields = list(rows[0])
    arr = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, r in enumerate(rows):
        arr[0, i] = tuple(r[f] for f in fields)
    return arr


def num(v):
    return np.array([[v]], dtype=np.float64)


def vad(v, a, d):
    return {"valence": num(v), "arousal": num(a), "dominance": num(d)}


def train_person(box, cats, v):
    return {"body_bbox": np.array([box], float), "annotations_categories": struct_array({"categories": cell(*cats)}),
            "annotations_continuous": struct_array(vad(*v)), "gender": "Male", "age": "Adult"}


def eval_person(box, annotators, vads, combined=None):
    p = {"body_bbox": np.array([box], float),
         "annotations_categories": struct_array(*[{"categories": cell(*a)} for a in annotators])}
    if combined:
        p["combined_categories"] = cell(*combined[0])
    p["annotations_continuous"] = struct_array(*[vad(*v) for v in vads])
    if combined:
        p["combined_continuous"] = struct_array(vad(*combined[1]))
    p.update({"gender": "Female", "age": "Kid"})
    return p


def image(name, persons, w=64, h=48, folder="mscoco/images"):
    return {"filename": name, "folder": folder,
            "image_size": struct_array({"n_col": num(w), "n_row": num(h)}),
            "original_database": struct_array({"name": "mscoco", "info": "x"}),
            "person": struct_array(*persons)}


def write_jpg(path, w=64, h=48, colour=(0, 0, 255)):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = colour
    img[10:30, 5:20] = (255, 0, 0)
    cv2.imwrite(str(path), img)


@pytest.fixture
def mat_dataset(tmp_path):
    root = tmp_path / "emotic_root"
    for name in ("a.jpg", "c.jpg", "v.jpg", "t.jpg"):
        write_jpg(root / "emotic" / "mscoco" / "images" / name)
    train = struct_array(
        image("a.jpg", [train_person([5, 10, 20, 30], ["Peace", "Engagement"], (6, 5, 7)),
                        train_person([1, 1, 30, 40], [], (5, 5, 5)),                        # no labels
                        train_person([0, 0, 10, 10], ["Fear"], (np.nan, np.nan, np.nan))]),  # no VAD
        image("missing.jpg", [train_person([1, 1, 30, 40], ["Anger"], (2, 8, 6))]),         # not on disk
        image("c.jpg", [train_person([100, 100, 140, 140], ["Anger"], (2, 8, 6)),           # outside image
                        train_person([-5, 2, 30, 90], ["Doubt/Confusion"], (4, 4, 4))]))    # clamped
    val = struct_array(image("v.jpg", [
        # three annotators, no combined_* fields: union and mean are computed
        eval_person([5, 5, 40, 40], [["Happiness"], ["Happiness", "Pleasure"], ["Excitement"]],
                    [(6, 4, 5), (8, 6, 7), (7, np.nan, 6)]),
        # combined_* fields present: used as they are
        eval_person([2, 2, 30, 30], [["Sadness"], ["Suffering"]], [(2, 7, 3), (4, 5, 3)],
                    combined=(["Sadness", "Suffering"], (3, 6, 3)))]))
    test = struct_array(image("t.jpg", [eval_person([5, 5, 40, 40], [["Fatigue"], [], ["Fatigue", "Pain"]],
                                                     [(3, 2, 4), (4, 2, 5), (5, 3, 6)])]))
    (root / "Annotations").mkdir(parents=True)
    scipy.io.savemat(str(root / "Annotations" / "Annotations.mat"), {"train": train, "val": val, "test": test})
    return root


def onehot(*names):
    v = np.zeros(26, np.float32)
    for n in names:
        v[CAT[n]] = 1
    return v


def test_mat_loader_union_mean_and_counted_skips(mat_dataset):
    tr = load_split(mat_dataset, "train")
    assert [r.source.split(" ")[0] for r in tr.records] == ["Annotations.mat:train[0].person[0]",
                                                            "Annotations.mat:train[2].person[1]"]
    a, clamped = tr.records
    np.testing.assert_array_equal(a.categories, onehot("Peace", "Engagement"))
    np.testing.assert_allclose(a.vad, [6, 5, 7])
    assert a.bbox == (5, 10, 20, 30) and a.image_path.name == "a.jpg" and a.image_path.is_file()
    assert clamped.bbox == (0, 2, 30, 48)
    rep = tr.report
    assert rep.persons_read == 6 and rep.kept == 2
    assert rep.skipped == {"persons without category labels": 1, "persons without valence/arousal/dominance": 1,
                           "missing images": 1, "boxes outside the image or empty": 1}
    assert rep.notes["boxes clamped to the image"] == 1
    assert "missing.jpg" in rep.summary() and "kept 2 of 6" in rep.summary()

    val = load_split(mat_dataset, "val")
    p, q = val.records
    np.testing.assert_array_equal(p.categories, onehot("Happiness", "Pleasure", "Excitement"))  # union
    np.testing.assert_allclose(p.vad, [7, 5, 6])  # mean per dimension, NaN annotator ignored for arousal
    np.testing.assert_array_equal(q.categories, onehot("Sadness", "Suffering"))
    np.testing.assert_allclose(q.vad, [3, 6, 3])  # combined_continuous used
    test = load_split(mat_dataset, "test")
    np.testing.assert_array_equal(test.records[0].categories, onehot("Fatigue", "Pain"))
    np.testing.assert_allclose(test.records[0].vad, [4, 7 / 3, 5])
    assert find_annotations(mat_dataset / "Annotations" / "Annotations.mat").layout == "mat"


def test_tandon_csv_layout(tmp_path):
    root = tmp_path / "d"
    write_jpg(root / "emotic" / "framesdb" / "images" / "f.jpg")
    (root / "emotic_pre").mkdir(parents=True)
    with open(root / "emotic_pre" / "val.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Index", "Folder", "Filename", "Image Size", "BBox", "Categorical_Labels",
                    "Continuous_Labels", "Gender", "Age"])
        w.writerow([0, "framesdb/images", "f.jpg", "[64, 48]", "[3, 4, 30, 40]", "['Esteem', 'Yearning']",
                    "[6.5, 4.0, 5.333]", "Male", "Adult"])
        w.writerow([1, "framesdb/images", "f.jpg", "[64, 48]", "[3, 4, 30, 40]", "[]", "[5, 5, 5]", "M", "A"])
    split = load_split(root, "val")
    assert split.report.layout == "tandon_csv" and len(split) == 1
    r = split.records[0]
    np.testing.assert_array_equal(r.categories, onehot("Esteem", "Yearning"))
    np.testing.assert_allclose(r.vad, [6.5, 4.0, 5.333], rtol=1e-5)
    assert r.bbox == (3, 4, 30, 40) and r.image_path.name == "f.jpg"
    assert split.report.skipped["persons without category labels"] == 1
    with pytest.raises(InputError, match="no 'train' annotations"):
        load_split(root, "train")


def test_kaggle_csv_reads_category_columns_by_header(tmp_path):
    root = tmp_path / "k"
    (root / "annots_arrs").mkdir(parents=True)
    (root / "img_arrs").mkdir()
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[..., 0] = 255  # red in RGB
    np.save(root / "img_arrs" / "arr0.npy", rgb)
    cats = list(reversed(EMOTIC_CATEGORIES))  # not the official order
    with open(root / "annots_arrs" / "annot_arrs_train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Filename", "Width", "Height", "Age", "Gender", "X_min", "Y_min", "X_max", "Y_max", "Arr_name",
                    "Crop_name", "Valence", "Arousal", "Dominance", *cats])
        w.writerow(["x.jpg", 64, 48, "A", "M", 2, 3, 40, 45, "arr0.npy", "c0.npy", 7, 3, 6,
                    *[1 if c in ("Affection", "Yearning") else 0 for c in cats]])
        w.writerow(["y.jpg", 64, 48, "A", "M", 2, 3, 40, 45, "gone.npy", "c1.npy", 7, 3, 6, *[1] * 26])
    split = load_split(root, "train")
    r = split.records[0]
    np.testing.assert_array_equal(r.categories, onehot("Affection", "Yearning"))
    assert r.bbox == (2, 3, 40, 45) and split.report.skipped["missing images"] == 1
    ds = EmoticDataset(split.records, Preprocess(16), Preprocess(16))
    item = ds[0]
    assert item["valid"] == 1 and item["scene"][0].mean() > item["scene"][2].mean()  # RGB order kept
    # a header without all 26 categories is an error naming the missing ones
    text = (root / "annots_arrs" / "annot_arrs_train.csv").read_text().replace("Yearning", "Longing")
    (root / "annots_arrs" / "annot_arrs_train.csv").write_text(text)
    with pytest.raises(InputError, match="Yearning"):
        load_split(root, "train")


def test_synthetic_layouts_read_identically(tmp_path):
    loaded = {}
    for fmt in ("mat", "tandon_csv", "kaggle_csv"):
        make_synthetic(tmp_path / fmt, persons=60, seed=5, fmt=fmt)
        loaded[fmt] = {s: load_split(tmp_path / fmt, s) for s in ("train", "val", "test")}
    for s in ("train", "val", "test"):
        ref = loaded["mat"][s].records
        assert len(ref) > 0 and loaded["mat"][s].report.skipped == {}
        for fmt in ("tandon_csv", "kaggle_csv"):
            other = loaded[fmt][s].records
            assert [r.bbox for r in other] == [r.bbox for r in ref]
            np.testing.assert_array_equal([r.categories for r in other], [r.categories for r in ref])
            np.testing.assert_allclose([r.vad for r in other], [r.vad for r in ref], atol=1e-4)
    # val/test: several annotators, so the union makes more positives per person than one annotator has
    assert loaded["mat"]["val"].labels().sum(1).mean() > 1.0
    with pytest.raises(InputError, match="not empty"):
        make_synthetic(tmp_path / "mat" / "Annotations", persons=60)


def test_dataset_crops_body_and_uses_cached_features(mat_dataset, tmp_path):
    from fusion import create_model

    records = load_split(mat_dataset, "train").records
    pre = Preprocess(8, (0, 0, 0), (1, 1, 1), "squash")
    ds = EmoticDataset(records, pre, pre)
    item = ds[0]
    # the body box [5,10,20,30] covers the blue patch drawn at [5:20, 10:30] (BGR blue -> RGB channel 2)
    assert item["body"][2].mean() > 0.9 and item["body"][0].mean() < 0.1
    assert item["scene"][0].mean() > 0.5  # the scene is mostly red
    torch.manual_seed(0)
    model = create_model("two_stream_tiny", pretrained=False)
    cache = FeatureCache(tmp_path / "fc")
    f1 = cache.scene_features(model, records)
    assert f1.shape == (2, model.scene_dim) and cache.misses == 1
    f2 = cache.scene_features(model, records)
    assert cache.hits == 1 and torch.equal(f1, f2)
    with torch.no_grad():
        pixels = EmoticDataset(records, pre, model.scene_preprocess)
        direct = model.eval().encode_scene(torch.stack([pixels[i]["scene"] for i in range(2)]))
    torch.testing.assert_close(f1, direct, rtol=1e-4, atol=1e-5)
    ds2 = EmoticDataset(records, model.body_preprocess, model.scene_preprocess, scene_features=f1)
    assert "scene" not in ds2[0] and torch.equal(ds2[1]["scene_feat"], f1[1])
    write_jpg(records[0].image_path, colour=(0, 255, 0))  # a changed image is a different cache entry
    cache.scene_features(model, records)
    assert cache.misses == 2


def test_exif_rotated_jpeg_is_cropped_in_the_annotated_pixel_grid(tmp_path):
    """A JPEG stored 80x48 with EXIF orientation 6 (a viewer shows it rotated, 48x80): the annotators' boxes
    are in the stored grid, so the box check and the crop both use the stored pixels, and the file is counted."""
    from PIL import Image

    from training.dataset import crop_box, read_image

    root = tmp_path / "x"
    folder = root / "emotic" / "framesdb" / "images"
    folder.mkdir(parents=True)
    rgb = np.zeros((48, 80, 3), np.uint8)
    rgb[:, :40] = (255, 0, 0)  # stored left half red, right half blue
    rgb[:, 40:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(folder / "rot.jpg", exif=exif.tobytes(), quality=95)
    write_jpg(folder / "plain.jpg", w=80)  # no orientation tag: not counted
    with Image.open(folder / "rot.jpg") as im:
        assert im.getexif()[0x0112] == 6 and im.size == (80, 48)
    (root / "emotic_pre").mkdir()
    with open(root / "emotic_pre" / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Index", "Folder", "Filename", "Image Size", "BBox", "Categorical_Labels",
                    "Continuous_Labels", "Gender", "Age"])
        # x 50..76 lies in the blue half of the stored grid, and outside the 48-wide rotated picture
        for i, (name, box) in enumerate([("rot.jpg", [50, 4, 76, 44]), ("rot.jpg", [4, 4, 30, 44]),
                                         ("plain.jpg", [5, 10, 20, 30])]):
            w.writerow([i, "framesdb/images", name, "[80, 48]", str(box), "['Peace']", "[5, 5, 5]", "M", "A"])
    split = load_split(root, "train")
    assert [r.bbox for r in split.records] == [(50, 4, 76, 44), (4, 4, 30, 44), (5, 10, 20, 30)]
    assert split.report.skipped == {} and "boxes clamped to the image" not in split.report.notes
    assert split.report.exif_oriented == 1 and "1 image file(s) with an EXIF orientation tag" in split.report.summary()
    image = read_image(split.records[0].image_path)
    assert image.shape == (48, 80, 3)  # the stored grid, not the 48-wide rotated view
    blue, red = crop_box(image, split.records[0].bbox), crop_box(image, split.records[1].bbox)
    assert blue.shape == (40, 26, 3) and blue[..., 0].min() > 200 and blue[..., 2].max() < 60  # BGR: all blue
    assert red.shape == (40, 26, 3) and red[..., 2].min() > 200 and red[..., 0].max() < 60
    pre = Preprocess(8, (0, 0, 0), (1, 1, 1), "squash")
    item = EmoticDataset(split.records, pre, pre)[0]
    assert item["valid"] == 1 and item["body"][2].mean() > 0.9 and item["body"][0].mean() < 0.1  # RGB: blue
    assert load_split(root, "train", check_images=False).report.exif_oriented == 0  # no file opened


# ---------------------------------------------------------------------- bad data
def test_bad_data_clear_errors(tmp_path, mat_dataset):
    with pytest.raises(InputError, match="does not exist"):
        load_split(tmp_path / "nowhere", "train")
    with pytest.raises(InputError, match="no EMOTIC annotations"):
        load_split(tmp_path, "train")
    bad = tmp_path / "bad"
    (bad / "Annotations").mkdir(parents=True)
    (bad / "Annotations" / "Annotations.mat").write_bytes(b"MATLAB 5.0 MAT-file, garbage" + bytes(200))
    with pytest.raises(InputError, match="cannot read"):
        load_split(bad, "train")
    # a split whose every person is unusable is an error that says why
    empty = tmp_path / "empty"
    (empty / "Annotations").mkdir(parents=True)
    scipy.io.savemat(str(empty / "Annotations" / "Annotations.mat"), {
        "train": struct_array(image("gone.jpg", [train_person([1, 1, 30, 40], ["Anger"], (2, 8, 6))])),
        "val": struct_array(image("gone.jpg", [train_person([1, 1, 30, 40], [], (2, 8, 6))]))})
    with pytest.raises(InputError, match="no usable persons.*missing images"):
        load_split(empty, "train")
    with pytest.raises(InputError, match="no usable persons.*without category labels"):
        load_split(empty, "val")
    with pytest.raises(InputError, match="no 'test' variable"):
        load_split(empty, "test")


def test_unreadable_image_mid_epoch_is_an_ignored_item_not_a_crash(mat_dataset):
    records = load_split(mat_dataset, "train").records
    records[0].image_path.write_bytes(b"not a jpeg any more")
    ds = EmoticDataset(records, Preprocess(8), Preprocess(8))
    item = ds[0]
    assert item["valid"] == 0 and item["body"].abs().sum() == 0
    assert ds[1]["valid"] == 1
    # and load-time checks count it (the header cannot be read)
    assert load_split(mat_dataset, "train").report.skipped["unreadable images"] == 1


def test_cli_bad_input_exit_code_2(tmp_path, capsys):
    from emomon.cli import main

    bad = tmp_path / "bad"
    (bad / "Annotations").mkdir(parents=True)
    (bad / "Annotations" / "Annotations.mat").write_text("corrupt")
    assert main(["train", "--data", str(bad), "--model", "two_stream_tiny", "--no-pretrained",
                 "--out", str(tmp_path / "run"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "emomon: error:" in err and "cannot read" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--config", "nope", "--data", str(bad)]) == 2
    assert main(["make-synthetic", "--out", str(tmp_path / "s"), "--persons", "5"]) == 2
