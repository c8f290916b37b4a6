"""Where `emomon batch` runs its videos: one process (`LocalPool`) or a pool of Ray actors (`RayPool`).

Both take the videos still to do and call `on_result(entry)` once per video with its manifest entry, and
`on_tick(frames_in_progress, running)` now and then for the progress line.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import deque

from emomon.cluster.config import BatchConfig, WorkerConfig
from emomon.cluster.inputs import VideoItem
from emomon.cluster.manifest import FAILED
from emomon.cluster.ray_support import actor_died_errors, connect
from emomon.cluster.workers import VideoWorker
from emomon.kernel import InputError

log = logging.getLogger(__name__)


class LocalPool:
    """Every video in this process, one after another, with the models loaded once."""

    workers = 1

    def __init__(self, monitor_config, batch_config: BatchConfig, out_dir: str, source_config=None):
        self.args = (monitor_config, batch_config, out_dir, source_config)
        self.tick_s = batch_config.progress_every_s

    def run(self, items: list[VideoItem], on_result, on_tick) -> None:
        worker = VideoWorker(*self.args)
        if worker.error:
            raise InputError(worker.error)
        last = [time.monotonic()]

        def tick(frames: int) -> None:  # the progress line during a long video, not only between videos
            if time.monotonic() - last[0] >= self.tick_s:
                last[0] = time.monotonic()
                on_tick(frames, 1)

        worker.listener = tick
        for item in items:
            on_tick(0, 1)  # (the first call: the models are loaded, frames/s counts from here)
            entry = worker.process(item)
            on_result({**entry, "attempts": 1})


class RayPool:
    """A pool of `VideoWorker` actors on a Ray cluster; each gets a whole video at a time.

    A worker that dies (killed, out of memory, its node lost) is replaced, and its video goes back to the front
    of the queue for another worker, up to `WorkerConfig.max_attempts` tries; its partial output was never
    renamed into place, so nothing of it is marked finished. Actors are named `emomon-batch-RUN-I` (`ray list
    actors` shows them)."""

    def __init__(self, address: str | None, workers: WorkerConfig, monitor_config, batch_config: BatchConfig,
                 out_dir: str, source_config=None):
        self.address, self.config = address, workers
        self.args = (monitor_config, batch_config, out_dir, source_config)
        self.tick_s = batch_config.progress_every_s
        self.run_id = uuid.uuid4().hex[:8]
        self.workers = 0

    def _count(self, ray, items: int) -> int:
        if self.config.count:
            return self.config.count
        free = ray.available_resources()
        fit = (free.get("GPU", 0) / self.config.num_gpus if self.config.num_gpus
               else free.get("CPU", 0) / self.config.num_cpus)
        return max(1, min(items, int(fit)))

    def run(self, items: list[VideoItem], on_result, on_tick) -> None:
        ray = connect(self.address)
        died = actor_died_errors(ray)
        cfg = self.config
        remote = ray.remote(num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus, max_concurrency=2, max_restarts=0)(
            VideoWorker)
        threads = max(1, int(cfg.num_cpus))
        level = logging.getLogger().getEffectiveLevel()
        generation = 0

        def start(slot: int):
            nonlocal generation
            generation += 1
            return remote.options(name=f"emomon-batch-{self.run_id}-{slot}.{generation}").remote(
                *self.args, threads=threads, log_level=level)

        self.workers = self._count(ray, len(items))
        actors = [start(i) for i in range(self.workers)]
        log.info("%d Ray workers (%g CPUs, %g GPUs each)", self.workers, cfg.num_cpus, cfg.num_gpus)
        try:
            self._check_ready(ray, actors, died)
            on_tick(0, 0)  # the models are loaded: frames/s counts from here
            queue = deque((item, 1) for item in items)
            running: dict = {}  # task ref -> (slot, item, attempt)
            idle = deque(range(self.workers))
            while queue or running:
                while queue and idle:
                    slot = idle.popleft()
                    item, attempt = queue.popleft()
                    running[actors[slot].process.remote(item)] = (slot, item, attempt)
                on_tick(self._frames_in_progress(ray, [actors[s] for s, _, _ in running.values()]), len(running))
                ready, _ = ray.wait(list(running), num_returns=1, timeout=self.tick_s)
                for ref in ready:
                    slot, item, attempt = running.pop(ref)
                    try:
                        entry = ray.get(ref)
                    except died as exc:
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        _kill(ray, actors[slot])
                        actors[slot] = start(slot)
                        if attempt < cfg.max_attempts:
                            log.warning("%s: its worker died (%s); retrying on another worker (try %d of %d)",
                                        item.source, reason, attempt + 1, cfg.max_attempts)
                            queue.appendleft((item, attempt + 1))
                        else:
                            on_result({"source": item.source, "name": item.name, "status": FAILED,
                                       "reason": f"its worker died on each of {attempt} tries: {reason}",
                                       "attempts": attempt})
                        idle.append(slot)
                        continue
                    on_result({**entry, "attempts": attempt})
                    idle.append(slot)
        finally:
            for actor in actors:
                _kill(ray, actor)

    def _check_ready(self, ray, actors, died) -> None:
        """Every worker has loaded its models; a bad model (or flag) is the user's error, said once."""
        try:
            errors = ray.get([a.ready.remote() for a in actors])
        except died as exc:
            raise InputError(f"a Ray worker died while loading the models: {str(exc).splitlines()[0]}") from None
        if any(errors):
            raise InputError(next(e for e in errors if e))

    @staticmethod
    def _frames_in_progress(ray, actors) -> int:
        """Frames done so far in the videos now running (a worker that does not answer in time counts 0)."""
        refs = [a.progress.remote() for a in actors]
        if not refs:
            return 0
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=1.0)
        total = 0
        for ref in done:
            with contextlib.suppress(Exception):  # already gone, or dying: its task says so
                total += ray.get(ref)[1]
        return total


def _kill(ray, actor) -> None:
    with contextlib.suppress(Exception):  # already gone, or dying: its task says so
        ray.kill(actor, no_restart=True)
