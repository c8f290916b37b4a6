"""Which emotion models the page offers: the start model, and each `--extra-model` that passed a start-up
check (loaded once in the background, so a model the server cannot load is never offered to a viewer;
the reason goes to the server log)."""

from __future__ import annotations

import logging
import threading

from emomon.webapp import views

log = logging.getLogger(__name__)

LOAD_FAILED = ("This emotion model could not be started on the server, so it was taken out of the list. "
               "Still using {active}.")


class ModelChoices:
    """The dropdown's entries; `check()` loads the extra models one by one in a background thread."""

    def __init__(self, engine):
        self.engine = engine
        self.failed: set[str] = set()
        self.checked = threading.Event()

    def check(self, background: bool = True) -> None:
        if background:
            threading.Thread(target=self._check, name="emomon-model-check", daemon=True).start()
        else:
            self._check()

    def _check(self) -> None:
        try:
            for spec in self.engine.model_choices[1:]:
                self.load(spec)
        finally:
            self.checked.set()

    def load(self, spec: str) -> bool:
        """Load `spec` now; False (and left out of the list from now on) when it cannot be loaded."""
        try:
            self.engine.model(spec)
            return True
        except Exception:  # noqa: BLE001 - any failure keeps the model out; the log says why
            log.exception("emotion model %s failed its check and is not offered in the page", spec)
            self.failed.add(spec)
            return False

    def entries(self) -> list[tuple[str, str]]:
        """(label, spec) per offered model: checkpoints by file name, never a server folder."""
        return [(views.model_label(s), s) for s in self.engine.model_choices if s not in self.failed]

    def label(self, spec: str) -> str:
        return views.model_label(spec)
