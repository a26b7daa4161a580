"""Keep TensorFlow's start-up chatter off the user's terminal, and nothing else.

TensorFlow's C++ side logs "oneDNN custom operations are on" and "All log messages before
absl::InitializeLog() is called are written to STDERR" while it is being imported, before any log
level it reads applies (TF_CPP_MIN_LOG_LEVEL does not stop them). So the first import of
`tensorflow`, whoever triggers it, runs with file descriptor 2 captured, and every captured line
except those known start-up notes is written back: a real error still shows. Pillow's warnings
about EXIF blocks it reads past are silenced too; an image it cannot decode is reported anyway.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|\] oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc"
    r"|^To enable the following instructions: .* rebuild TensorFlow"
)


@contextmanager
def filtered_stderr(noise: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Capture what is written to file descriptor 2 (C++ included), then pass on all but `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not noise.search(line)]
            sys.stderr.write("".join(kept))


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as usual, and has its loader run the module with stderr filtered."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: later imports find the loaded module
        spec = importlib.util.find_spec(name)
        loader = None if spec is None else spec.loader
        if loader is not None:
            execute = loader.exec_module

            def exec_module(module: ModuleType) -> None:
                with filtered_stderr():
                    execute(module)

            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def quiet_start_up() -> None:
    """Call once, first thing in the CLI's entry point (not in the library, not in tests)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own INFO and WARNING lines
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietImport())
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
