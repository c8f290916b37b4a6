"""The `--vlm*` flags of `emomon run`, `app` and `evaluate`, with defaults read from `VlmStageConfig`; the
client's defaults (`fusion.vlm.VlmConfig`) are written out here because importing fusion loads torch and
`emomon --help` must not (tests/test_vlm_stream.py holds them equal)."""

from __future__ import annotations

import argparse

from emomon.commands.options import integer, positive
from emomon.pipeline.config import VlmStageConfig

_STAGE = VlmStageConfig()
# fusion.vlm.VlmConfig's defaults, written out (no torch import)
CLIENT_DEFAULTS = {"timeout_s": 60.0, "retries": 2, "concurrency": 2, "api_key_env": "EMOMON_VLM_API_KEY"}
SPEC_FORMS = "vlm:http://HOST:PORT/v1#MODEL (an OpenAI-compatible server) or vlm:hf:PATH (a local transformers model)"


def add_vlm_client_arguments(g) -> None:
    """How to talk to the VLM: timeouts, retries, concurrency, API key, images, answer cache."""
    g.add_argument("--vlm-timeout", type=positive, default=CLIENT_DEFAULTS["timeout_s"], metavar="S",
                   help=f"seconds one question may take (default {CLIENT_DEFAULTS['timeout_s']:g})")
    g.add_argument("--vlm-retries", type=integer(0), default=CLIENT_DEFAULTS["retries"], metavar="N",
                   help="tries again after a timeout, a refused connection, a 429 or a 5xx, waiting 1 s, 2 s, ... "
                        f"(default {CLIENT_DEFAULTS['retries']})")
    g.add_argument("--vlm-concurrency", type=integer(1), default=CLIENT_DEFAULTS["concurrency"], metavar="N",
                   help=f"questions in flight at once (default {CLIENT_DEFAULTS['concurrency']})")
    g.add_argument("--vlm-api-key-env", default=CLIENT_DEFAULTS["api_key_env"], metavar="NAME",
                   help="environment variable holding the server's API key, sent as a Bearer token and never "
                        f"logged (default {CLIENT_DEFAULTS['api_key_env']}; unset: no key)")
    g.add_argument("--vlm-crop", action="store_true",
                   help="also send the person's crop as a second image (for models that take several)")
    g.add_argument("--vlm-cache", default=_STAGE.cache, metavar="DIR",
                   help="keep answers here, keyed by image, box, model and prompt (reused and resumable)")


def add_vlm_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("vision-language model (slow path, never on the frame loop)")
    g.add_argument("--vlm", default=_STAGE.spec, metavar="SPEC",
                   help=f"also ask a VLM how each tracked person feels, in the background: {SPEC_FORMS}")
    g.add_argument("--vlm-every", type=positive, default=_STAGE.every_s, metavar="SECONDS",
                   help=f"ask about each track at most once per this many seconds of the stream "
                        f"(default {_STAGE.every_s:g})")
    add_vlm_client_arguments(g)


def vlm_client_config(args):
    """A `fusion.vlm.VlmConfig` from the flags (imports fusion: call it only when a VLM is used)."""
    from fusion.vlm import VlmConfig

    return VlmConfig(timeout_s=args.vlm_timeout, retries=args.vlm_retries, concurrency=args.vlm_concurrency,
                     api_key_env=args.vlm_api_key_env, crop=args.vlm_crop)


def vlm_stage_config(args) -> VlmStageConfig:
    """The slow path's settings (a command without the flags gets it off); a malformed spec fails here."""
    spec = getattr(args, "vlm", None)
    if not spec:
        return VlmStageConfig()
    from fusion.vlm import parse_vlm_spec

    parse_vlm_spec(spec)  # one line, exit 2, before any model loads
    return VlmStageConfig(spec=spec, every_s=args.vlm_every, cache=args.vlm_cache, client=vlm_client_config(args))
