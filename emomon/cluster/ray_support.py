"""Ray, imported only where a command asks for it (`--ray`): the core install does not need it."""

from __future__ import annotations

import logging

from emomon.kernel import InputError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'emomon[ray]'"


def import_ray():
    """The `ray` module, or a one-line InputError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def import_serve():
    import_ray()
    try:
        from ray import serve
    except ImportError:
        raise InputError(f"emomon serve --ray needs Ray Serve, which is not installed: {INSTALL_HINT}") from None
    return serve


def is_address(text: str | None) -> bool:
    """Whether `text` names a Ray cluster (`auto`, `local`, `HOST:PORT`, `ray://HOST:PORT`), not an input."""
    return text is not None and (text in ("", "auto", "local") or ":" in text)


def connect(address: str | None):
    """Join the cluster at `address` ('auto': the one `ray start --head` runs on this machine; HOST:PORT or
    ray://HOST:PORT: a remote one); None or '': that local one if there is one, else a new cluster for this
    process; 'local': always a new one. A process that already called `ray.init` keeps its connection."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    local = address in (None, "", "local")
    try:
        if local:  # 'local': always a new cluster; none: the one `ray start` runs here, if any, else a new one
            ray.init(address="local" if address == "local" else None, include_dashboard=False,
                     logging_level=logging.WARNING, configure_logging=False)
        else:
            ray.init(address=address, logging_level=logging.WARNING, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = "a local Ray cluster" if local else f"the Ray cluster at '{address}'"
        raise InputError(f"cannot start or join {where}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    resources = ray.cluster_resources()
    log.info("Ray cluster%s: %g CPUs, %g GPUs, %d nodes", "" if local else f" {address}",
             resources.get("CPU", 0), resources.get("GPU", 0), len(ray.nodes()))
    return ray


def actor_died_errors(ray) -> tuple[type[BaseException], ...]:
    """The exceptions that mean 'the worker process is gone' (killed, crashed, its node lost)."""
    exc = ray.exceptions
    return tuple(getattr(exc, name) for name in ("RayActorError", "ActorDiedError", "ActorUnavailableError",
                                                 "WorkerCrashedError", "NodeDiedError") if hasattr(exc, name))
