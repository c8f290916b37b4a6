"""Reading EMOTIC annotations: the official `Annotations.mat` and the two common CSV layouts.

Every layout becomes the same list of `PersonRecord`s (one per annotated person) plus a `LoadReport`
that counts what was skipped and why. Nothing here raises mid-way for one bad person: missing images,
boxes outside the image and persons without labels are counted and skipped. Only a file that cannot be
read at all, or a split with nothing usable in it, is an error (`InputError`, one line).

Layouts (design notes section 2):

- `mat`: `Annotations/Annotations.mat` (variables `train`, `val`, `test`), images under `emotic/<folder>/`.
  Val/test persons carry several annotators: categories are the union of theirs, VAD the mean
  (`combined_categories` / `combined_continuous` are used where the file has them).
- `tandon_csv`: `{split}.csv` with `Index, Folder, Filename, Image Size, BBox, Categorical_Labels,
  Continuous_Labels, Gender, Age` (Tandon-A/emotic `mat2py.py`).
- `kaggle_csv`: `annot_arrs_{split}.csv` with `Filename, Width, Height, Age, Gender, X_min, Y_min, X_max,
  Y_max, Arr_name, Crop_name, Valence, Arousal, Dominance` and 26 binary category columns, read by header.
  Whole images come from `img_arrs/<Arr_name>` (RGB `.npy`) or, failing that, from image files found by name.

Example:

    >>> from training.annotations import load_split
    >>> split = load_split("/data/emotic", "val")          # doctest: +SKIP
    >>> len(split.records), split.report.summary()         # doctest: +SKIP
"""

from __future__ import annotations

import ast
import csv
import functools
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomon.kernel import IMAGE_SUFFIXES, InputError, first_line
from fusion import EMOTIC_CATEGORIES, NUM_CATEGORIES, VAD_NAMES

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
LAYOUTS = ("mat", "tandon_csv", "kaggle_csv")
MIN_BOX = 4  # pixels: a clamped box thinner than this is not a usable crop
EXIF_ORIENTATION = 0x0112  # the EXIF tag; 1 = stored upright, 2..8 = a viewer would flip/rotate
EXIF_NOTE = "image file(s) with an EXIF orientation tag, read unrotated (boxes are in the stored pixel grid)"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_CATEGORY_INDEX = {_norm(c): i for i, c in enumerate(EMOTIC_CATEGORIES)}
_CATEGORY_INDEX.update({"doubt": 9, "confusion": 9})  # "Doubt/Confusion" split by some exporters


@dataclass
class PersonRecord:
    """One annotated person: where the image is, the body box, and the labels."""

    image_path: Path  # an image file, or a .npy array (RGB) for the Kaggle layout
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels, clamped to the image
    categories: np.ndarray  # (26,) float32 in {0, 1}
    vad: np.ndarray  # (3,) float32, 1..10
    image_key: str  # identifies the whole image (shared by the persons in it)
    source: str  # where in the annotation file this person came from, for messages


@dataclass
class LoadReport:
    """What loading one split read, kept and skipped (reason -> count, with a few examples each)."""

    split: str
    source: str
    layout: str
    persons_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: Counter = field(default_factory=Counter)  # kept, but worth knowing (e.g. boxes clamped)

    @property
    def kept(self) -> int:
        return self.persons_read - sum(self.skipped.values())

    @property
    def exif_oriented(self) -> int:
        """Image files with an EXIF orientation tag other than 1 (read unrotated, in the annotation's grid)."""
        return self.notes[EXIF_NOTE]

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 3:
            ex.append(where)

    def summary(self) -> str:
        parts = [f"{self.split}: kept {self.kept} of {self.persons_read} persons ({self.layout}, {self.source})"]
        if self.skipped:
            parts.append("skipped: " + ", ".join(
                f"{n} {reason} (e.g. {self.examples[reason][0]})" for reason, n in self.skipped.most_common()))
        if self.notes:
            parts.append("notes: " + ", ".join(f"{n} {what}" for what, n in self.notes.most_common()))
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"split": self.split, "source": self.source, "layout": self.layout,
                "persons_read": self.persons_read, "kept": self.kept, "skipped": dict(self.skipped),
                "examples": self.examples, "notes": dict(self.notes)}


@dataclass
class SplitData:
    split: str
    records: list[PersonRecord]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.records)

    def labels(self) -> np.ndarray:
        return np.stack([r.categories for r in self.records]) if self.records else np.zeros((0, NUM_CATEGORIES))


@dataclass
class _RawPerson:
    """A person as an annotation file states it, before any checks."""

    image: str  # relative to the image root, or absolute
    bbox: list[float] | None
    categories: list[str] | np.ndarray | None  # names, or a (26,) 0/1 vector
    vad: list[float] | None
    image_size: tuple[int, int] | None  # (width, height) when the file says
    where: str
    category_note: str | None = None
    alt_image: str | None = None  # tried when `image` is not found (Kaggle: the file by name)


# ------------------------------------------------------------------------------------------------ discovery
@dataclass
class AnnotationSource:
    layout: str
    files: dict[str, Path]  # split -> annotation file (the .mat serves all three)
    root: Path  # the data directory the user gave


def find_annotations(data: str | os.PathLike) -> AnnotationSource:
    """Find the annotation files under a data path (a directory, an Annotations.mat, or one CSV)."""
    path = Path(data).expanduser()
    if not path.exists():
        raise InputError(f"data path '{path}' does not exist")
    if path.is_file():
        if path.suffix.lower() == ".mat":
            return AnnotationSource("mat", {s: path for s in SPLITS}, _mat_root(path))
        if path.suffix.lower() == ".csv":
            path = path.parent
        else:
            raise InputError(f"'{path}' is neither a directory nor an Annotations.mat or CSV file")
    for cand in (path / "Annotations.mat", path / "Annotations" / "Annotations.mat",
                 path / "annotations" / "Annotations.mat"):
        if cand.is_file():
            return AnnotationSource("mat", {s: cand for s in SPLITS}, path)
    for pattern, layout in (("annot_arrs_{}.csv", "kaggle_csv"), ("{}.csv", "tandon_csv")):
        for folder in _candidate_dirs(path):
            files = {s: folder / pattern.format(s) for s in SPLITS if (folder / pattern.format(s)).is_file()}
            if files:
                return AnnotationSource(layout, files, path)
    raise InputError(f"no EMOTIC annotations under '{path}': expected Annotations/Annotations.mat, "
                     "annot_arrs_{train,val,test}.csv or {train,val,test}.csv (emomon make-synthetic --out DIR "
                     "writes a small example)")


def _mat_root(mat: Path) -> Path:
    return mat.parent.parent if mat.parent.name.lower() == "annotations" else mat.parent


def _candidate_dirs(path: Path) -> list[Path]:
    dirs = [path]
    for sub in ("annots_arrs", "annot_arrs", "emotic_pre", "archive/annots_arrs", "archive"):
        if (path / sub).is_dir():
            dirs.append(path / sub)
    return dirs


# ------------------------------------------------------------------------------------------------ .mat
def _flat(x) -> list:
    """Unwrap MATLAB's nesting: arrays of arrays/cells become a flat Python list of leaves."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "US":
            return [str(s) for s in x.ravel()]
        if x.dtype == object:
            out = []
            for item in x.ravel():
                out.extend(_flat(item))
            return out
        if x.dtype.names:
            return list(x.ravel())
        return [v.item() for v in x.ravel()]
    if isinstance(x, np.void) and x.dtype.names:
        return [x]
    if isinstance(x, (np.generic,)):
        return [x.item()]
    return [x]


def _field(rec, name: str):
    names = rec.dtype.names or ()
    return rec[name] if name in names else None


def _string(x) -> str:
    leaves = [v for v in _flat(x) if isinstance(v, str)]
    return leaves[0] if leaves else ""


def _numbers(x) -> list[float]:
    out = []
    for v in _flat(x):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            continue
    return out


def _structs(x) -> list:
    """The records of a (possibly nested) MATLAB struct array."""
    if x is None:
        return []
    if isinstance(x, np.void):
        return [x]
    if isinstance(x, np.ndarray):
        if x.dtype.names:
            return list(x.ravel())
        if x.dtype == object:
            out = []
            for item in x.ravel():
                out.extend(_structs(item))
            return out
    return []


def _vad_of(rec) -> list[float]:
    """valence, arousal, dominance of one struct (by field name; by position if the names differ)."""
    if all(_field(rec, n) is not None for n in ("valence", "arousal", "dominance")):
        vals = [_numbers(_field(rec, n)) for n in ("valence", "arousal", "dominance")]
        return [v[0] if v else float("nan") for v in vals]
    nums = [n for name in (rec.dtype.names or ()) for n in _numbers(rec[name])[:1]]
    return (nums + [float("nan")] * 3)[:3]


def _annotator_categories(rec) -> list[str]:
    value = _field(rec, "categories")
    if value is None:  # unexpected field name: every string the annotator struct holds
        value = np.array([rec[n] for n in rec.dtype.names or ()], dtype=object)
    return [c for c in _flat(value) if isinstance(c, str)]


def _image_size(rec) -> tuple[int, int] | None:
    size = _field(rec, "image_size")
    if size is None:
        return None
    recs = _structs(size)
    if recs:
        cols, rows = _numbers(_field(recs[0], "n_col")), _numbers(_field(recs[0], "n_row"))
        if cols and rows:
            return int(cols[0]), int(rows[0])
        nums = _numbers(np.array(list(recs[0]), dtype=object))
    else:
        nums = _numbers(size)
    return (int(nums[0]), int(nums[1])) if len(nums) >= 2 else None


def _mat_person(p, image: str, size, where: str) -> _RawPerson:
    """One person struct: union of annotators' categories, mean of their VAD (or the combined_* fields)."""
    bbox = _numbers(_field(p, "body_bbox"))
    annotators = [_annotator_categories(a) for a in _structs(_field(p, "annotations_categories"))]
    union = sorted({c for ann in annotators for c in ann})
    combined = _field(p, "combined_categories")
    note = None
    if combined is not None:
        names = sorted({c for c in _flat(combined) if isinstance(c, str)})
        if names and union and names != union:
            note = "persons whose combined_categories differ from the annotators' union (combined used)"
        cats = names or union
    else:
        cats = union
    vad = None
    comb_vad = _structs(_field(p, "combined_continuous"))
    if comb_vad:
        vad = _vad_of(comb_vad[0])
    if vad is None or all(np.isnan(vad)):
        per_ann = [_vad_of(a) for a in _structs(_field(p, "annotations_continuous"))]
        per_ann = [v for v in per_ann if not all(np.isnan(v))]
        vad = list(np.nanmean(np.array(per_ann, dtype=np.float64), axis=0)) if per_ann else None
    return _RawPerson(image, bbox if len(bbox) == 4 else None, cats, vad, size, where, note)


@functools.lru_cache(maxsize=1)
def _loadmat(path: str, mtime_ns: int) -> dict:
    """The parsed file, kept for the next split (the real file takes seconds to parse)."""
    import scipy.io

    return scipy.io.loadmat(path)


def _read_mat(path: Path, split: str) -> list[_RawPerson]:
    try:
        mat = _loadmat(str(path.resolve()), path.stat().st_mtime_ns)
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise InputError(f"'{path}' is a MATLAB v7.3 file; re-save it with save(..., '-v7') "
                         f"(the official EMOTIC file is v5)") from exc
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for corrupt files
        raise InputError(f"cannot read '{path}' as a MATLAB file ({first_line(exc, limit=100)})") from exc
    if split not in mat:
        have = sorted(k for k in mat if not k.startswith("__"))
        raise InputError(f"'{path}' has no '{split}' variable (has {have})")
    people = []
    for i, img in enumerate(_structs(mat[split])):
        filename, folder = _string(_field(img, "filename")), _string(_field(img, "folder"))
        rel = f"{folder}/{filename}" if folder else filename
        size = _image_size(img)
        for j, p in enumerate(_structs(_field(img, "person"))):
            people.append(_mat_person(p, rel, size, f"{path.name}:{split}[{i}].person[{j}] ({rel})"))
    return people


# ------------------------------------------------------------------------------------------------ CSV
def _read_csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = [h.strip() for h in (reader.fieldnames or [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read CSV '{path}' ({type(exc).__name__})") from exc
    rows = [{(k or "").strip(): v for k, v in r.items()} for r in rows]
    return header, rows


def _literal(text: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _read_tandon_csv(path: Path) -> list[_RawPerson]:
    header, rows = _read_csv_rows(path)
    need = ["Folder", "Filename", "BBox", "Categorical_Labels", "Continuous_Labels"]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"'{path}' is not a Tandon-style EMOTIC CSV: missing columns {missing}")
    people = []
    for i, r in enumerate(rows):
        folder, filename = (r.get("Folder") or "").strip(), (r.get("Filename") or "").strip()
        rel = f"{folder}/{filename}" if folder else filename
        bbox = _literal(r.get("BBox", ""))
        cats = _literal(r.get("Categorical_Labels", ""))
        vad = _literal(r.get("Continuous_Labels", ""))
        size = _literal(r.get("Image Size", ""))
        people.append(_RawPerson(
            rel, [float(v) for v in bbox] if isinstance(bbox, (list, tuple)) and len(bbox) == 4 else None,
            [str(c) for c in cats] if isinstance(cats, (list, tuple)) else None,
            [float(v) for v in vad] if isinstance(vad, (list, tuple)) and len(vad) == 3 else None,
            (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) and len(size) == 2 else None,
            f"{path.name}:{i + 2} ({rel})"))
    return people


def kaggle_category_columns(header: list[str]) -> list[tuple[int, str]]:
    """Map the 26 category columns of a Kaggle-style header to category indices, by name."""
    found: dict[int, str] = {}
    for col in header:
        idx = _CATEGORY_INDEX.get(_norm(col))
        if idx is not None and idx not in found:
            found[idx] = col
    missing = [EMOTIC_CATEGORIES[i] for i in range(NUM_CATEGORIES) if i not in found]
    if missing:
        raise InputError(f"category columns missing from the CSV header: {missing}")
    return sorted(found.items())


def _to_float(text) -> float | None:
    try:
        return float(str(text).strip())
    except (TypeError, ValueError):
        return None


def _read_kaggle_csv(path: Path) -> list[_RawPerson]:
    header, rows = _read_csv_rows(path)
    need = ["Filename", "X_min", "Y_min", "X_max", "Y_max", "Valence", "Arousal", "Dominance"]
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"'{path}' is not a Kaggle-style EMOTIC CSV: missing columns {missing}")
    columns = kaggle_category_columns(header)
    people = []
    for i, r in enumerate(rows):
        arr = (r.get("Arr_name") or "").strip()
        folder, filename = (r.get("Folder") or "").strip(), (r.get("Filename") or "").strip()
        by_name = (f"{folder}/{filename}" if folder else f"name:{filename}") if filename else None
        image = f"npy:{arr}" if arr else (by_name or "name:")
        box = [_to_float(r.get(k)) for k in ("X_min", "Y_min", "X_max", "Y_max")]
        vad = [_to_float(r.get(k)) for k in ("Valence", "Arousal", "Dominance")]
        vec = np.zeros(NUM_CATEGORIES, np.float32)
        for idx, col in columns:
            v = _to_float(r.get(col))
            vec[idx] = 1.0 if v is not None and v > 0.5 else 0.0
        w, h = _to_float(r.get("Width")), _to_float(r.get("Height"))
        people.append(_RawPerson(
            image, None if any(v is None for v in box) else box, vec,
            None if any(v is None for v in vad) else vad,
            (int(w), int(h)) if w and h else None, f"{path.name}:{i + 2} ({filename or arr})",
            alt_image=by_name if arr else None))
    return people


# ------------------------------------------------------------------------------------------------ images
def _orientation(im) -> int:
    """A PIL image's EXIF orientation (1 when absent or unreadable: a broken EXIF block is no reason to skip)."""
    try:
        return int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - PIL raises several types for malformed EXIF
        return 1


class _ImageResolver:
    """Maps an annotation's image reference to a file, caching existence checks and image sizes."""

    def __init__(self, source: AnnotationSource, ann_file: Path):
        self.root = source.root
        self.ann_dir = ann_file.parent
        self.layout = source.layout
        self._roots: list[Path] | None = None
        self._by_name: dict[str, Path | None] | None = None
        self._npy_dirs = [d for d in (self.ann_dir.parent / "img_arrs", self.root / "img_arrs",
                                      self.ann_dir / "img_arrs", self.root / "archive" / "img_arrs",
                                      self.ann_dir.parent) if d.is_dir()]
        self._sizes: dict[Path, tuple[int, int] | None] = {}
        self.exif_oriented: set[Path] = set()  # files whose EXIF orientation is not 1

    def _image_roots(self, sample: list[str]) -> list[Path]:
        if self._roots is None:
            cands = [self.root / "emotic", self.root, self.ann_dir.parent / "emotic", self.ann_dir.parent,
                     self.ann_dir, self.root / "images"]
            cands = list(dict.fromkeys(c for c in cands if c.is_dir()))
            scored = sorted(cands, key=lambda c: -sum((c / s).is_file() for s in sample))
            self._roots = scored or [self.root]
        return self._roots

    def resolve(self, ref: str, sample: list[str]) -> Path | None:
        if ref.startswith("npy:"):
            name = ref[4:]
            for d in self._npy_dirs:
                if (d / name).is_file():
                    return d / name
            return None
        if ref.startswith("name:"):
            return self._find_by_name(ref[5:])
        p = Path(ref)
        if p.is_absolute():
            return p if p.is_file() else None
        for root in self._image_roots(sample):
            if (root / ref).is_file():
                return root / ref
        return None

    def _find_by_name(self, name: str) -> Path | None:
        if self._by_name is None:
            self._by_name = {}
            base = self.root / "emotic" if (self.root / "emotic").is_dir() else self.root
            for dirpath, _, files in os.walk(base):
                for f in files:
                    if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES:
                        # a name seen twice is ambiguous: better skipped than the wrong picture
                        self._by_name[f] = None if f in self._by_name else Path(dirpath) / f
        return self._by_name.get(name)

    def size(self, path: Path) -> tuple[int, int] | None:
        """(width, height) read from the file header (or the .npy header), None if unreadable. This is the
        stored pixel grid, EXIF orientation ignored (PIL does not apply it), as `training.dataset` decodes;
        files with an orientation tag are remembered for the load report."""
        if path not in self._sizes:
            try:
                if path.suffix.lower() == ".npy":
                    arr = np.load(path, mmap_mode="r")
                    self._sizes[path] = (int(arr.shape[1]), int(arr.shape[0])) if arr.ndim == 3 else None
                else:
                    from PIL import Image

                    with Image.open(path) as im:
                        self._sizes[path] = im.size
                        if _orientation(im) != 1:
                            self.exif_oriented.add(path)
            except Exception:  # noqa: BLE001 - any unreadable image is counted, not raised
                self._sizes[path] = None
        return self._sizes[path]


# ------------------------------------------------------------------------------------------------ checks
def _category_vector(cats, where: str, report: LoadReport) -> np.ndarray | None:
    if cats is None:
        return None
    if isinstance(cats, np.ndarray):
        return cats.astype(np.float32) if cats.sum() > 0 else None
    vec = np.zeros(NUM_CATEGORIES, np.float32)
    for name in cats:
        idx = _CATEGORY_INDEX.get(_norm(name))
        if idx is None:
            report.notes[f"unknown category name(s) ignored (e.g. '{name}')"] += 1
        else:
            vec[idx] = 1.0
    return vec if vec.sum() > 0 else None


def _check(raw: _RawPerson, resolver: _ImageResolver, sample: list[str], report: LoadReport,
           check_images: bool) -> PersonRecord | None:
    cats = _category_vector(raw.categories, raw.where, report)
    if cats is None:
        report.skip("persons without category labels", raw.where)
        return None
    vad = None if raw.vad is None else np.asarray(raw.vad, np.float32)
    if vad is None or vad.shape != (3,) or not np.all(np.isfinite(vad)):
        report.skip("persons without valence/arousal/dominance", raw.where)
        return None
    if raw.category_note:
        report.notes[raw.category_note] += 1
    if np.any((vad < 1) | (vad > 10)):
        report.notes["VAD values outside 1..10 clipped"] += 1
        vad = np.clip(vad, 1, 10)
    path = resolver.resolve(raw.image, sample)
    if path is None and raw.alt_image:
        path = resolver.resolve(raw.alt_image, sample)
    if path is None:
        report.skip("missing images", raw.where)
        return None
    if raw.bbox is None or not np.all(np.isfinite(raw.bbox)):
        report.skip("persons without a usable body_bbox", raw.where)
        return None
    size = resolver.size(path) if check_images else raw.image_size
    if check_images and size is None:
        report.skip("unreadable images", raw.where)
        return None
    x1, y1, x2, y2 = raw.bbox
    if size is not None:
        w, h = size
        c = (min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))
        if c[2] - c[0] < MIN_BOX or c[3] - c[1] < MIN_BOX:
            report.skip("boxes outside the image or empty", raw.where)
            return None
        if c != (x1, y1, x2, y2):
            report.notes["boxes clamped to the image"] += 1
        x1, y1, x2, y2 = c
    elif x2 - x1 < MIN_BOX or y2 - y1 < MIN_BOX:
        report.skip("boxes outside the image or empty", raw.where)
        return None
    key = str(path.relative_to(resolver.root)) if path.is_relative_to(resolver.root) else str(path)
    return PersonRecord(path, (float(x1), float(y1), float(x2), float(y2)), cats, vad, key, raw.where)


def load_split(data: str | os.PathLike, split: str, *, check_images: bool = True,
               allow_empty: bool = False) -> SplitData:
    """Read one split (train/val/test) of an EMOTIC-format data set; see the module docstring.

    `check_images` opens each image's header once (size for box checks, unreadable files skipped).
    An empty split raises `InputError` unless `allow_empty`.
    """
    if split not in SPLITS:
        raise InputError(f"unknown split '{split}': use one of {', '.join(SPLITS)}")
    source = find_annotations(data)
    if split not in source.files:
        raise InputError(f"no '{split}' annotations in {source.root} ({source.layout} layout has "
                         f"{sorted(source.files)})")
    path = source.files[split]
    reader = {"mat": _read_mat, "tandon_csv": lambda p, s: _read_tandon_csv(p),
              "kaggle_csv": lambda p, s: _read_kaggle_csv(p)}[source.layout]
    raw = reader(path, split)
    report = LoadReport(split, str(path), source.layout, persons_read=len(raw))
    resolver = _ImageResolver(source, path)
    sample = [r.image for r in raw[:20] if not r.image.startswith(("npy:", "name:"))]
    records = [rec for r in raw if (rec := _check(r, resolver, sample, report, check_images)) is not None]
    if resolver.exif_oriented:
        report.notes[EXIF_NOTE] = len(resolver.exif_oriented)
    if not records and not allow_empty:
        why = report.summary() if raw else f"'{path}' holds no persons for '{split}'"
        raise InputError(f"split '{split}' has no usable persons: {why}")
    (log.warning if report.skipped else log.info)("%s", report.summary())
    return SplitData(split, records, report)


__all__ = ["LAYOUTS", "SPLITS", "AnnotationSource", "LoadReport", "PersonRecord", "SplitData",
           "find_annotations", "kaggle_category_columns", "load_split", "VAD_NAMES"]
