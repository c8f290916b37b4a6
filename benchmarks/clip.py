"""The default benchmark input when no --source is given: a clip generated from the two photos Ultralytics
ships (bus.jpg, zidane.jpg: real people, so the detector finds persons), panned slowly like a moving camera."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _assets() -> list[Path]:
    try:
        import ultralytics
    except ImportError:
        return []
    folder = Path(ultralytics.__file__).parent / "assets"
    return [p for p in (folder / "bus.jpg", folder / "zidane.jpg") if p.is_file()]


def generate_clip(path: str | Path, frames: int = 96, fps: float = 24.0, size: tuple[int, int] = (640, 360)) -> Path:
    """Write an MP4 of `frames` frames (width x height `size`), half over each photo, panning across it."""
    import cv2

    from emomon.kernel import InputError

    images = [cv2.imread(str(p)) for p in _assets()]
    images = [im for im in images if im is not None]
    if not images:
        raise InputError("no --source given and Ultralytics' example images (bus.jpg, zidane.jpg) are not "
                         "installed to generate a clip from: pass --source VIDEO")
    w, h = size
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise InputError(f"cannot write the generated benchmark clip '{path}'")
    per_image = max(1, -(-frames // len(images)))
    try:
        for i in range(frames):
            image = images[min(i // per_image, len(images) - 1)]
            t = (i % per_image) / max(1, per_image - 1)
            ih, iw = image.shape[:2]
            cw = min(iw, int(ih * w / h))             # largest window of the clip's aspect ratio, 90% of it
            cw = int(cw * 0.9)
            ch = int(cw * h / w)
            x0 = int(round(t * (iw - cw)))
            y0 = int(round(t * (ih - ch)))
            window = np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw])
            writer.write(cv2.resize(window, (w, h), interpolation=cv2.INTER_AREA))
    finally:
        writer.release()
    return path
