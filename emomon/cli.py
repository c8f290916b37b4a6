"""The `emomon` command: one CLI with subcommands.

Each subcommand lives in its own module that exposes `register(subparsers)`; the module sets
`func(args) -> int` on its parser. Heavy imports (torch, ultralytics) happen inside `func`, so
`emomon --help` stays fast. Exit codes: 0 success, 2 bad input (one line on stderr), 1 unexpected error,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from emomon.kernel import InputError, setup_logging

# Modules that register subcommands, in the order `emomon --help` lists them.
COMMAND_MODULES = [
    "emomon.commands.predict",
    "emomon.commands.run",
    "emomon.commands.train",
    "emomon.commands.export",
    "emomon.commands.bench",
    "emomon.commands.app",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="emomon", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # OpenCV/FFmpeg print their own warnings for every failed open; our errors already say it in one line.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"emomon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emomon: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
        if args.debug:
            raise
        print(f"emomon: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
