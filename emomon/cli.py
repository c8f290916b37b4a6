"""The `emomon` command: one CLI with subcommands.

Each subcommand lives in its own module that exposes `register(subparsers)`; the module sets
`func(args) -> int` on its parser. Heavy imports (torch, ultralytics) happen inside `func`, so
`emomon --help` stays fast. Exit codes: 0 success, 2 bad input or a failed write (one line on stderr),
1 unexpected error, 130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP.
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
    "emomon.commands.batch",
    "emomon.commands.serve",
    "emomon.commands.train",
    "emomon.commands.temporal",
    "emomon.commands.export",
    "emomon.commands.bench",
    "emomon.commands.app",
]


# Native libraries' own log levels, unless the user set them: OpenCV/FFmpeg print a line for every failed
# camera or stream open, and our errors already say it in one line. Read before main() changes them.
_NATIVE_LOG_ENV = {"OPENCV_LOG_LEVEL": ("SILENT", "WARNING"), "OPENCV_FFMPEG_LOGLEVEL": ("-8", "24")}
_USER_ENV = {name: os.environ.get(name) for name in _NATIVE_LOG_ENV}


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on stderr (exit 2), like every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def quiet_native_logs(verbose: bool) -> None:
    """OpenCV and FFmpeg log straight to stderr: silent by default, warnings with -v (a user's own setting
    of the variables wins). OpenCV reads its variable at its first message, so setting it after import works;
    its runtime setter is called too, for a cv2 that has logged already."""
    for name, (quiet, loud) in _NATIVE_LOG_ENV.items():
        if _USER_ENV[name] is None:
            os.environ[name] = loud if verbose else quiet
    cv2 = sys.modules.get("cv2")
    levels = getattr(getattr(getattr(cv2, "utils", None), "logging", None), "setLogLevel", None)
    if levels is not None and _USER_ENV["OPENCV_LOG_LEVEL"] is None:
        levels(cv2.utils.logging.LOG_LEVEL_WARNING if verbose else cv2.utils.logging.LOG_LEVEL_SILENT)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="emomon", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_native_logs(False)  # before the commands import cv2; -v raises it again below
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    quiet_native_logs(args.verbose)
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
