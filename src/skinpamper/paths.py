"""Where Skin Pamper keeps downloads and caches: `$SKINPAMPER_HOME`, else the platform cache dir.

Computed on call, never at import, so tests and users can point it elsewhere with the variable.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home_dir() -> Path:
    """The root folder for datasets and caches (not created here)."""
    env = os.environ.get("SKINPAMPER_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir("skinpamper"))


def datasets_dir() -> Path:
    """Downloaded datasets live here, one sub-folder per registry name."""
    return home_dir() / "datasets"


def cache_dir() -> Path:
    """Decoded-array caches live here, keyed by source content and target size."""
    return home_dir() / "cache"
