"""The emotion model as a Ray Serve deployment, with dynamic batching across cameras (`@serve.batch`).

Imported only by `emomon serve --ray` (it imports Ray Serve). Each camera's ingest actor sends one request per
frame: the frame, its person boxes and its scene embedding; requests that arrive together (from many cameras)
become one `Predictor.predict_many` call: one body batch and one head call for all of them.
"""

from __future__ import annotations

from ray import serve


@serve.deployment(name="EmotionModel")
class EmotionModelServer:
    def __init__(self, model_config, max_batch_size: int, batch_wait_s: float, threads: int | None = None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        from emomon.pipeline import build_predictor

        self.predictor = build_predictor(model_config)
        for method in (self.predict, self.encode_scene):
            method.set_max_batch_size(max_batch_size)
            method.set_batch_wait_timeout_s(batch_wait_s)
        self.batches: list[int] = []  # sizes of the last model calls (the status endpoint shows their mean)

    def info(self) -> dict:
        """What the ingest actors' stand-in predictor needs: the label space, what runs the model."""
        backend = self.predictor.backend
        return {"labels": self.predictor.model.labels, "backend": backend.name,
                "precision": getattr(backend, "precision", "fp32"), "model": type(self.predictor.model).__name__}

    def stats(self) -> dict:
        recent = self.batches[-200:]
        return {"calls": len(self.batches), "mean_batch": round(sum(recent) / len(recent), 2) if recent else None}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def encode_scene(self, frames: list) -> list:
        return list(self.predictor.encode_scene(frames))

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def predict(self, requests: list[tuple]) -> list:
        """requests: (frame, boxes, scene embedding or None) each; the result of each: `Predictor.predict`'s."""
        frames, boxes, scenes = (list(x) for x in zip(*requests))
        missing = [i for i, s in enumerate(scenes) if s is None]
        if missing:
            for i, emb in zip(missing, self.predictor.encode_scene([frames[i] for i in missing])):
                scenes[i] = emb
        self.batches = self.batches[-999:] + [len(requests)]
        return self.predictor.predict_many(frames, boxes, scenes)
