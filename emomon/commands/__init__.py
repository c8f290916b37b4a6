"""Subcommands of the `emomon` CLI, one module each (see `emomon.cli`)."""
