"""A synthetic EMOTIC-format data set with a planted, learnable relation between pixels and labels.

`emomon make-synthetic --out DIR` writes images plus an annotation file in one of the real layouts
(default: the official `Annotations/Annotations.mat` with nested structs, several annotators at val/test),
so training reads it through exactly the code path real EMOTIC takes.

The planted relation (fixed, independent of `seed`):

- every image has a scene type (0-5): background colour and stripe texture;
  every person has a body type (0-5): the colour and pattern of the body box, with a head on top;
- the 13 even-numbered categories follow the body type, the 13 odd-numbered ones the scene type
  (category c is driven by type (c // 2) % 6): positive with probability 0.9 when the type matches,
  0.02 otherwise; types are imbalanced (30% ... 8%), so some categories are rare;
- valence follows the body type, arousal the scene type, dominance both; Gaussian noise on top;
- train persons have one annotator (integer VAD); val/test persons have three noisy annotators whose
  categories are united and VAD averaged (the real file's `combined_*` fields hold the same).

A model that learns both streams gets far above chance; one that sees only the body (or only the scene)
gets about half the categories right.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from emomon.kernel import InputError
from fusion import EMOTIC_CATEGORIES, NUM_CATEGORIES

log = logging.getLogger(__name__)

FORMATS = ("mat", "tandon_csv", "kaggle_csv")
N_TYPES = 6
TYPE_PRIOR = np.array([0.30, 0.22, 0.17, 0.13, 0.10, 0.08])
P_MATCH, P_NOISE = 0.9, 0.02
# BGR colours, chosen far apart
SCENE_COLOURS = np.array([[40, 160, 40], [200, 120, 30], [30, 60, 190], [170, 170, 170], [40, 200, 220],
                          [150, 40, 150]], dtype=np.float64)
BODY_COLOURS = np.array([[230, 230, 50], [20, 20, 20], [60, 140, 255], [255, 255, 255], [120, 60, 20],
                         [90, 255, 120]], dtype=np.float64)
VALENCE_BY_BODY = np.linspace(-3, 3, N_TYPES)
AROUSAL_BY_SCENE = np.array([2.5, -2.5, 1.0, -1.0, 3.0, -3.0])


def category_driver(c: int) -> tuple[str, int]:
    """('body' | 'scene', type) that category index c follows."""
    return ("body" if c % 2 == 0 else "scene"), (c // 2) % N_TYPES


def _labels(rng, body: int, scene: int, p_match=P_MATCH, p_noise=P_NOISE) -> np.ndarray:
    y = np.zeros(NUM_CATEGORIES, np.float32)
    for c in range(NUM_CATEGORIES):
        kind, t = category_driver(c)
        match = (body if kind == "body" else scene) == t
        y[c] = rng.random() < (p_match if match else p_noise)
    if y.sum() == 0:  # every EMOTIC person has at least one category
        y[2 * body] = 1  # the first category its body type drives
    return y


def _vad(rng, body: int, scene: int, noise: float) -> np.ndarray:
    v = 5.5 + VALENCE_BY_BODY[body] + rng.normal(0, noise)
    a = 5.5 + AROUSAL_BY_SCENE[scene] + rng.normal(0, noise)
    d = 5.5 + 0.5 * VALENCE_BY_BODY[body] - 0.5 * AROUSAL_BY_SCENE[scene] + rng.normal(0, noise)
    return np.clip([v, a, d], 1, 10)


def _draw_scene(rng, scene: int, w: int, h: int) -> np.ndarray:
    base = SCENE_COLOURS[scene]
    img = np.empty((h, w, 3), np.float64)
    img[:] = base
    period = 6 + 3 * (scene % 3)
    yy, xx = np.mgrid[0:h, 0:w]
    coord = xx if scene % 2 == 0 else yy
    img[(coord // (period // 2)) % 2 == 1] *= 0.7
    img += rng.normal(0, 10, img.shape)
    return img


def _draw_person(rng, img: np.ndarray, body: int, box: tuple[int, int, int, int]) -> None:
    x1, y1, x2, y2 = box
    head = max(3, (y2 - y1) // 5)
    colour = BODY_COLOURS[body]
    torso = img[y1 + head:y2, x1:x2]
    torso[:] = colour
    if body % 2 == 1:  # a checker pattern on odd body types
        yy, xx = np.mgrid[0:torso.shape[0], 0:torso.shape[1]]
        torso[((yy // 4) + (xx // 4)) % 2 == 1] *= 0.55
    torso += rng.normal(0, 8, torso.shape)
    cx, cy = (x1 + x2) // 2, y1 + head // 2
    cv2.circle(img, (cx, cy), max(2, head // 2), (140, 170, 210), -1)


def _place_boxes(rng, n: int, w: int, h: int) -> list[tuple[int, int, int, int]]:
    boxes = []
    slots = rng.permutation(3)[:n]
    for s in slots:
        bw = int(rng.integers(w // 6, w // 4))
        bh = int(rng.integers(h // 2, int(h * 0.85)))
        x_lo = int(s * w / 3)
        x1 = int(rng.integers(x_lo, max(x_lo + 1, x_lo + w // 3 - bw)))
        y1 = int(rng.integers(0, max(1, h - bh)))
        boxes.append((x1, y1, min(w, x1 + bw), min(h, y1 + bh)))
    return boxes


def generate(persons: int = 1200, seed: int = 0, image_size: tuple[int, int] = (128, 96),
             annotators: int = 3) -> dict[str, list[dict]]:
    """In-memory data set: split -> list of images, each {'image', 'persons': [{bbox, labels, vad, ...}]}."""
    if persons < 30:
        raise InputError(f"--persons must be at least 30 (10 per split), got {persons}")
    rng = np.random.default_rng(seed)
    w, h = image_size
    images, count = [], 0
    while count < persons:
        n = int(min(persons - count, rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2])))
        scene = int(rng.choice(N_TYPES, p=TYPE_PRIOR))
        img = _draw_scene(rng, scene, w, h)
        people = []
        for box in _place_boxes(rng, n, w, h):
            body = int(rng.choice(N_TYPES, p=TYPE_PRIOR))
            _draw_person(rng, img, body, box)
            people.append({"bbox": box, "body_type": body, "scene_type": scene})
        images.append({"image": np.clip(img, 0, 255).astype(np.uint8), "persons": people, "scene_type": scene})
        count += n
    order = rng.permutation(len(images))
    n_val = n_test = max(1, int(round(0.15 * len(images))))
    split_of = {}
    for rank, i in enumerate(order):
        split_of[int(i)] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    out: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for i, im in enumerate(images):
        split = split_of[i]
        for p in im["persons"]:
            truth = _labels(rng, p["body_type"], p["scene_type"])
            if split == "train":
                anns = [truth]
                vads = [np.round(_vad(rng, p["body_type"], p["scene_type"], 0.6))]
            else:  # several annotators, each missing some of the true categories and adding a little noise
                anns = [np.where(truth > 0, rng.random(NUM_CATEGORIES) < 0.8, rng.random(NUM_CATEGORIES) < 0.01)
                        .astype(np.float32) for _ in range(annotators)]
                vads = [np.round(_vad(rng, p["body_type"], p["scene_type"], 0.8)) for _ in range(annotators)]
                if all(a.sum() == 0 for a in anns):
                    anns[0] = truth
            p["annotators"] = anns
            p["annotator_vad"] = vads
            p["labels"] = np.clip(np.sum(anns, axis=0), 0, 1).astype(np.float32)  # union
            p["vad"] = np.mean(vads, axis=0)  # mean
        out[split].append({**im, "name": f"img_{i:05d}.jpg"})
    return out


# ------------------------------------------------------------------------------------------------ writers
def _names(vec: np.ndarray) -> list[str]:
    return [EMOTIC_CATEGORIES[i] for i in np.flatnonzero(vec > 0.5)]


def _cell(strings: list[str]) -> np.ndarray:
    c = np.empty((1, len(strings)), dtype=object)
    for i, s in enumerate(strings):
        c[0, i] = s
    return c


def _struct(rows: list[dict]) -> np.ndarray:
    """A MATLAB 1xN struct array (scipy writes structured object arrays as structs)."""
    fields = list(rows[0]) if rows else []
    arr = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, r in enumerate(rows):
        arr[0, i] = tuple(r[f] for f in fields)
    return arr


def _num(v) -> np.ndarray:
    return np.array([[float(v)]])


def _vad_struct(v) -> dict:
    return {"valence": _num(v[0]), "arousal": _num(v[1]), "dominance": _num(v[2])}


def write_mat(data: dict[str, list[dict]], root: Path, folder: str = "synthetic/images") -> Path:
    """The official structure: Annotations/Annotations.mat with train/val/test struct arrays."""
    import scipy.io

    mat = {}
    for split, images in data.items():
        rows = []
        for im in images:
            persons = []
            for p in im["persons"]:
                person = {"body_bbox": np.array([p["bbox"]], dtype=np.float64)}
                if split == "train":
                    person["annotations_categories"] = _struct([{"categories": _cell(_names(p["labels"]))}])
                    person["annotations_continuous"] = _struct([_vad_struct(p["vad"])])
                else:
                    person["annotations_categories"] = _struct(
                        [{"categories": _cell(_names(a))} for a in p["annotators"]])
                    person["combined_categories"] = _cell(_names(p["labels"]))
                    person["annotations_continuous"] = _struct([_vad_struct(v) for v in p["annotator_vad"]])
                    person["combined_continuous"] = _struct([_vad_struct(p["vad"])])
                person["gender"] = "Female" if p["body_type"] % 2 else "Male"
                person["age"] = "Adult"
                persons.append(person)
            h, w = im["image"].shape[:2]
            rows.append({"filename": im["name"], "folder": folder,
                         "image_size": _struct([{"n_col": _num(w), "n_row": _num(h)}]),
                         "original_database": _struct([{"name": "synthetic", "info": "emomon make-synthetic"}]),
                         "person": _struct(persons)})
        mat[split] = _struct(rows)
    path = root / "Annotations" / "Annotations.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(path), mat)
    return path


def write_tandon_csv(data: dict[str, list[dict]], root: Path, folder: str = "synthetic/images") -> Path:
    out = root / "emotic_pre"
    out.mkdir(parents=True, exist_ok=True)
    for split, images in data.items():
        with open(out / f"{split}.csv", "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["Index", "Folder", "Filename", "Image Size", "BBox", "Categorical_Labels",
                         "Continuous_Labels", "Gender", "Age"])
            idx = 0
            for im in images:
                h, w = im["image"].shape[:2]
                for p in im["persons"]:
                    vad = [int(v) if float(v).is_integer() else round(float(v), 4) for v in p["vad"]]
                    wr.writerow([idx, folder, im["name"], [w, h], list(p["bbox"]), _names(p["labels"]), vad,
                                 "Male", "Adult"])
                    idx += 1
    return out


def write_kaggle_csv(data: dict[str, list[dict]], root: Path, shuffle_seed: int = 0) -> Path:
    """annots_arrs/annot_arrs_{split}.csv + img_arrs/*.npy (RGB). Category columns in a shuffled order,
    as a reminder that readers must go by the header."""
    ann_dir, arr_dir = root / "annots_arrs", root / "img_arrs"
    ann_dir.mkdir(parents=True, exist_ok=True)
    arr_dir.mkdir(parents=True, exist_ok=True)
    cats = list(EMOTIC_CATEGORIES)
    np.random.default_rng(shuffle_seed).shuffle(cats)
    for split, images in data.items():
        with open(ann_dir / f"annot_arrs_{split}.csv", "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["Filename", "Width", "Height", "Age", "Gender", "X_min", "Y_min", "X_max", "Y_max",
                         "Arr_name", "Crop_name", "Valence", "Arousal", "Dominance", *cats])
            for k, im in enumerate(images):
                h, w = im["image"].shape[:2]
                arr_name = f"{split}_arr_{k:05d}.npy"
                np.save(arr_dir / arr_name, im["image"][..., ::-1])
                for j, p in enumerate(im["persons"]):
                    x1, y1, x2, y2 = p["bbox"]
                    crop_name = f"{split}_crop_{k:05d}_{j}.npy"
                    np.save(arr_dir / crop_name, im["image"][y1:y2, x1:x2, ::-1])
                    onehot = {EMOTIC_CATEGORIES[i]: int(v) for i, v in enumerate(p["labels"])}
                    wr.writerow([im["name"], w, h, "Adult", "Male", x1, y1, x2, y2, arr_name, crop_name,
                                 *[round(float(v), 4) for v in p["vad"]], *[onehot[c] for c in cats]])
    return ann_dir


def make_synthetic(out: str | os.PathLike, persons: int = 1200, seed: int = 0, fmt: str = "mat",
                   image_size: tuple[int, int] = (128, 96)) -> dict:
    """Write the synthetic set to `out` (see the module docstring); returns a summary dict."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
    root = Path(out).expanduser()
    if root.exists() and any(root.iterdir()) and not (root / "synthetic.json").is_file():
        raise InputError(f"'{root}' exists and is not empty; give a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    data = generate(persons, seed, image_size)
    if fmt in ("mat", "tandon_csv"):
        img_dir = root / "emotic" / "synthetic" / "images"
        img_dir.mkdir(parents=True, exist_ok=True)
        for images in data.values():
            for im in images:
                if not cv2.imwrite(str(img_dir / im["name"]), im["image"], [cv2.IMWRITE_JPEG_QUALITY, 95]):
                    raise OSError(f"cannot write {img_dir / im['name']}")
    ann = {"mat": write_mat, "tandon_csv": write_tandon_csv, "kaggle_csv": write_kaggle_csv}[fmt](data, root)
    counts = {s: sum(len(im["persons"]) for im in ims) for s, ims in data.items()}
    summary = {"format": fmt, "annotations": str(ann), "persons": counts, "images": {s: len(v) for s, v in
                                                                                    data.items()},
               "seed": seed, "image_size": list(image_size),
               "planted": {c: "{} type {}".format(*category_driver(i)) for i, c in enumerate(EMOTIC_CATEGORIES)},
               "positives": {s: {c: int(sum(p["labels"][i] for im in ims for p in im["persons"]))
                                 for i, c in enumerate(EMOTIC_CATEGORIES)} for s, ims in data.items()}}
    (root / "synthetic.json").write_text(json.dumps(summary, indent=1))
    log.info("synthetic EMOTIC (%s) in %s: %s persons", fmt, root, counts)
    return summary
