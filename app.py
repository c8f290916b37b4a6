"""The emomon web app: `python app.py [--host 127.0.0.1] [--port 7860] [--share] [--emotion-model ...]`.

Same flags as `emomon app` (see `python app.py --help`). For notebooks and tests, `build_app(...)` returns
the `gr.Blocks` page without serving it.
"""

from emomon.webapp import AppConfig, build_app, launch

__all__ = ["AppConfig", "build_app", "launch", "main"]


def main(argv: list[str] | None = None) -> int:
    """`python app.py ...`: the same flags and exit codes as `emomon app ...`."""
    import sys

    from emomon.cli import main as cli_main

    return cli_main(["app", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
