"""Where SDME keeps its data: raw corpora under ``<data_dir>/raw/<name>``, built datasets under
``<data_dir>/built/<name>``.

The data dir is, in order: an explicit argument (``--data-dir``), the ``SDME_DATA_DIR``
environment variable, or ``$XDG_CACHE_HOME/sdme`` (``~/.cache/sdme``).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SDME_DATA_DIR"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "sdme"


def raw_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    return data_dir(root) / "raw" / name


def built_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    return data_dir(root) / "built" / name
