"""The VLM slow path of `emomon run` and the app (`--vlm SPEC --vlm-every SECONDS`).

A vision-language model takes seconds per person, the frame loop milliseconds, so the loop never waits for it:
each frame, `step` hands the tracks that are due (never asked, or last asked `every_s` stream seconds ago, and
not still waiting for an answer) to background workers through a bounded queue (`put_nowait`: when the queue is
full the track is simply asked on a later frame), and attaches each answer that has arrived to its track's person
in the current frame (`PersonResult.vlm`, the JSONL's `vlm` field: each answer appears once, in the first frame
after it arrived where its track is seen). A server that is down or slow only means answers stop coming:
the stream goes on, the log says so once when it goes down and once when it answers again, and `to_dict()` (the
run summary's `vlm`) counts asked, answered, failed and skipped questions with the last error.

Persons without a track id (still images) are not asked: their answer could never be attached to a later frame
(`emomon predict --emotion-model vlm:...` asks about a photo's persons directly).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter

import numpy as np

from fusion import PersonResult

log = logging.getLogger(__name__)


class VlmStage:
    def __init__(self, model, every_s: float, queue_size: int = 8, max_age: int = 30):
        """`model`: a `fusion.vlm.VlmEmotionModel` (anything with `ask(frame, box, frame_index, time_s)`,
        `name` and `config.concurrency`)."""
        if every_s <= 0:
            raise ValueError("--vlm-every must be above 0 seconds")
        self.model, self.every_s = model, float(every_s)
        self._queue: queue.Queue = queue.Queue()  # bounded by `queue_size` in `step`, so `close` never blocks
        self._queue_size, self._waiting = queue_size, 0
        self._lock = threading.Lock()
        self._answers: dict[int, object] = {}   # track id -> answer not yet attached
        self._asked: dict[int, float] = {}      # track id -> stream time it was last asked at
        self._busy: set[int] = set()            # tracks whose question is queued or being asked
        self._seen: dict[int, int] = {}         # track id -> the step it was last seen at (forgotten after max_age)
        self._steps, self.max_age = 0, max_age
        self._generation = 0                    # bumped by reset(): answers about an earlier source are dropped
        self.counts: Counter = Counter()
        self.latencies: list[float] = []
        self.status, self.last_error = "waiting for the first answer", None
        self._workers = [threading.Thread(target=self._work, name=f"emomon-vlm-{i}", daemon=True)
                         for i in range(max(1, int(getattr(model.config, "concurrency", 1))))]
        for w in self._workers:
            w.start()

    # -- the frame loop's side: never blocks --------------------------------------------------------------------
    def step(self, frame_index: int, time_s: float, image: np.ndarray,
             persons: list[PersonResult | None]) -> list[PersonResult | None]:
        """Attach arrived answers to this frame's persons and queue the tracks that are due; returns `persons`."""
        out = list(persons)
        snapshot = None
        with self._lock:
            for i, p in enumerate(out):
                if p is None or p.track_id is None:
                    continue
                tid = p.track_id
                self._seen[tid] = self._steps
                answer = self._answers.pop(tid, None)
                if answer is not None:
                    out[i] = p.replace(vlm=answer)
                    self.counts["attached"] += 1
                last = self._asked.get(tid)
                if tid in self._busy or (last is not None and time_s - last < self.every_s):
                    continue
                if self._waiting >= self._queue_size:
                    self.counts["skipped_busy"] += 1  # asked on a later frame
                    continue
                if snapshot is None:
                    snapshot = image.copy()  # the frame loop may reuse its buffer; one copy per frame at most
                self._queue.put_nowait((self._generation, tid, frame_index, time_s, snapshot,
                                        np.asarray(p.box, dtype=np.float64).copy()))
                self._waiting += 1
                self._busy.add(tid)
                self._asked[tid] = time_s
                self.counts["asked"] += 1
            self._forget_stale()
            self._steps += 1
        return out

    def _forget_stale(self) -> None:
        """Tracks unseen for `max_age` frames are gone (as for smoothing): their state and unattached answers go."""
        for tid in [t for t, n in self._seen.items() if self._steps - n > self.max_age]:
            del self._seen[tid]
            self._asked.pop(tid, None)
            if self._answers.pop(tid, None) is not None:
                self.counts["answers_for_lost_tracks"] += 1

    def reset(self) -> None:
        """A new source (or a restart of tracking): earlier tracks' questions and answers no longer apply."""
        with self._lock:
            self._generation += 1
            while True:  # questions about the old tracks not yet started are not asked at all
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
                self._waiting -= 1
            self._answers.clear()
            self._asked.clear()
            self._busy.clear()
            self._seen.clear()

    def close(self, close_model: bool = True) -> None:
        """Stop the workers after the question each is asking (they are daemon threads: a slow server never
        holds up the end of a run); `close_model=False` keeps a model other stages share (the app's)."""
        with self._lock:
            self._generation += 1
        while True:  # questions not yet started are dropped
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in self._workers:  # one stop sign each (the queue is unbounded: this never blocks)
            self._queue.put_nowait(None)
        close = getattr(self.model, "close", None) if close_model else None
        if close is not None:
            threading.Thread(target=close, daemon=True).start()

    # -- the workers -----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            generation, tid, frame_index, time_s, image, box = item
            with self._lock:
                self._waiting -= 1
            try:
                answer = self.model.ask(image, box, frame_index=frame_index, time_s=time_s)
                error = getattr(answer, "error", None)
            except Exception as exc:  # noqa: BLE001 - a bug in one question must not end the slow path
                answer, error = None, f"{type(exc).__name__}: {exc}"
                log.exception("VLM question about track %d failed", tid)
            with self._lock:
                if generation != self._generation:
                    continue
                self._busy.discard(tid)
                if error is None:
                    self._answers[tid] = answer
                    self.counts["answered"] += 1
                    if answer.latency_s is not None and not answer.cached:
                        self.latencies.append(answer.latency_s)
                    if self.status != "ok":
                        if self.last_error:
                            log.warning("VLM %s answers again", self.model.name)
                        self.status = "ok"
                else:
                    self.counts["failed"] += 1
                    self.last_error = error
                    if self.status != "down":
                        log.warning("VLM %s gives no answers (%s); the stream goes on without it", self.model.name,
                                    error)
                    self.status = "down"

    # -- reporting --------------------------------------------------------------------------------------------
    def status_line(self) -> str:
        """One line for the app's status: which model, whether it answers, how many answers so far."""
        with self._lock:
            if self.status == "down":
                return f"VLM down: {self.last_error}"
            done = self.counts["answered"]
            if self.status == "ok":
                p50 = float(np.median(self.latencies)) if self.latencies else 0.0
                return f"VLM: {done} answer{'s' if done != 1 else ''}, median {p50:.1f} s each"
            return f"VLM: {self.status} ({self.counts['asked']} asked)"

    def to_dict(self) -> dict:
        with self._lock:
            lat = np.asarray(self.latencies, dtype=np.float64)
            return {"model": self.model.name, "every_s": self.every_s, "status": self.status,
                    "last_error": self.last_error,
                    **{k: int(self.counts[k]) for k in ("asked", "answered", "failed", "attached", "skipped_busy",
                                                        "answers_for_lost_tracks")},
                    "in_flight": len(self._busy),
                    "latency_s": ({"p50": round(float(np.percentile(lat, 50)), 3),
                                   "p95": round(float(np.percentile(lat, 95)), 3), "count": int(lat.size)}
                                  if lat.size else None)}


def build_vlm_stage(config, labels=None, device: str = "cpu", max_age: int = 30) -> VlmStage | None:
    """The slow path for `--vlm SPEC` (None without one) from a `VlmStageConfig`; `labels`: the label space to
    ask in (the pipeline's)."""
    if not config.spec:
        return None
    from fusion.models.labels import EMOTIC
    from fusion.vlm import VlmConfig, load_vlm

    model = load_vlm(config.spec, config.client or VlmConfig(), labels or EMOTIC, cache_dir=config.cache,
                     device=device)
    log.info("VLM slow path: %s, each track at most once per %g s, %d at a time", model.name, config.every_s,
             model.config.concurrency)
    return VlmStage(model, config.every_s, queue_size=config.queue, max_age=max_age)
