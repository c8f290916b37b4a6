"""Beyond one process: video corpora (`emomon batch`) and many live cameras (`emomon serve --ray`) on Ray.

Layer 3 (beside training and benchmarks): it drives `emomon.pipeline` and is driven by the commands. Ray is
an optional extra (`pip install 'emomon[ray]'`), imported only by the Ray parts when they run.

- `inputs`: the videos of a corpus (paths, globs, folders, list files) and their result folders' names
- `video_job`: one video through a loaded pipeline into a result folder renamed into place when complete
- `manifest`: the append-only record of finished and failed videos (resume, exactly once)
- `corpus_table`: one row per track of every finished video, CSV and Parquet
- `workers`, `pools`: the model worker, run in-process (`LocalPool`) or as Ray actors (`RayPool`)
- `batch`: the driver (`run_batch`): plan, progress, manifest, table
- `cameras`, `serve_app`, `camera_status`: `emomon serve --ray`: cameras from YAML, the Serve deployment with
  dynamic batching, per-camera ingest actors, their supervision and the status endpoint
"""

import importlib

_EXPORTS = {
    "emomon.cluster.batch": ("BatchReport", "run_batch"),
    "emomon.cluster.cameras": ("CameraConfig", "load_cameras"),
    "emomon.cluster.config": ("BatchConfig", "ServeConfig", "WorkerConfig"),
    "emomon.cluster.corpus_table": ("write_table",),
    "emomon.cluster.inputs": ("VideoItem", "expand_inputs"),
    "emomon.cluster.manifest": ("Manifest", "read_manifest"),
    "emomon.cluster.pools": ("LocalPool", "RayPool"),
    "emomon.cluster.ray_support": ("connect", "import_ray", "is_address"),
    "emomon.cluster.serve_app": ("serve_cameras",),
    "emomon.cluster.video_job": ("process_video",),
    "emomon.cluster.workers": ("VideoWorker",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'emomon.cluster' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
