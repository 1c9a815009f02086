"""Loading a built SDME dataset: by name from the data folder, or by path.

A built dataset is a plain Hugging Face file-based dataset (parquet shards plus a card whose
YAML names the splits and features), so this is a thin layer over ``datasets.load_dataset``
(https://huggingface.co/docs/datasets/loading#local-and-remote-files) that finds the folder,
explains what to do when it is absent, and offers helpers that read feature sizes and the label
taxonomy from the dataset itself rather than from constants.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdme import paths
from sdme.build import BUILD_INFO_NAME, CARD_NAME
from sdme.schema import MODALITIES

if TYPE_CHECKING:
    import datasets

FORMATS = ("torch", "numpy")


def resolve_built(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None
                  ) -> Path:
    """The folder of a built dataset.

    A plain name (no path separator) is looked up as ``<data_dir>/built/<name>`` first; a path
    (or a name with no dataset of that name in the data folder) is taken as a folder.

    Raises:
        FileNotFoundError: No such dataset, with the commands that make it.
    """
    text = os.fspath(name_or_path)
    looks_like_path = (not isinstance(name_or_path, str) or "/" in text or os.sep in text
                       or text.startswith((".", "~")))
    if not looks_like_path:
        candidate = paths.built_dir(text, data_dir)
        if candidate.is_dir():
            return candidate
        local = Path(text)
        if (local / BUILD_INFO_NAME).is_file():
            return local
        raise FileNotFoundError(
            f"no built dataset {text!r} in {candidate.parent}; run `sdme download && sdme build`"
            + ("" if text == "sample" else f" (for your own corpus: `sdme download folder "
               f"--path DIR --name {text} && sdme build {text}`)"))
    path = Path(text).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such built dataset folder")
    return path


def load_dataset(name_or_path: str | os.PathLike, split: str | None = None, *,
                 data_dir: str | os.PathLike | None = None, format: str | None = None,
                 cache_dir: str | os.PathLike | None = None
                 ) -> datasets.Dataset | datasets.DatasetDict:
    """Loads a built SDME dataset with ``datasets.load_dataset``.

    Args:
        name_or_path: A dataset name under ``<data_dir>/built/`` (e.g. ``"sample"``) or a
            folder.
        split: ``"train"``, ``"validation"`` or ``"test"``; None loads all splits.
        data_dir: The SDME data folder (default: ``$SDME_DATA_DIR`` or ``~/.cache/sdme``).
        format: ``"torch"`` or ``"numpy"``: feature columns come as ``[T, dim]`` tensors or
            arrays; None keeps Python objects.
        cache_dir: Where ``datasets`` keeps its Arrow cache (default: its own).

    Raises:
        FileNotFoundError: No such dataset (the message says how to build it).
        ValueError: Unknown format or split.
    """
    import datasets

    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS} or None, got {format!r}")
    path = resolve_built(name_or_path, data_dir)
    for required in (CARD_NAME, BUILD_INFO_NAME):
        if not (path / required).is_file():
            raise FileNotFoundError(f"{path}: not a built SDME dataset (no {required}); "
                                    "build it with `sdme build`")
    kwargs: dict[str, Any] = {}
    if cache_dir is not None:
        kwargs["cache_dir"] = str(cache_dir)
    try:
        ds = datasets.load_dataset(str(path), split=split, **kwargs)
    except ValueError as exc:
        if split is not None and "split" in str(exc).lower():
            raise ValueError(f"{path}: no split {split!r} ({exc})") from exc
        raise
    return ds.with_format(format) if format else ds


def _features_of(dataset: Any) -> datasets.Features:
    if hasattr(dataset, "features"):
        return dataset.features
    if hasattr(dataset, "values"):  # DatasetDict: all splits share their features
        for split in dataset.values():
            return split.features
    raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")


def feature_dims(dataset: datasets.Dataset | datasets.DatasetDict) -> dict[str, int]:
    """Feature vector size per modality, read from the ``<m>_feat`` column types."""
    features = _features_of(dataset)
    dims = {}
    for m in MODALITIES:
        column = f"{m}_feat"
        if column not in features:
            raise KeyError(f"the dataset has no {column!r} column: not a built SDME dataset")
        shape = getattr(features[column], "shape", None)
        if not shape or len(shape) != 2 or shape[1] is None:
            raise TypeError(f"column {column!r} is {features[column]!r}, expected "
                            "Array2D(shape=(None, dim))")
        dims[m] = int(shape[1])
    return dims


def taxonomy(dataset: datasets.Dataset | datasets.DatasetDict) -> list[str]:
    """The emotion categories in label order, read from the ``label`` ClassLabel."""
    features = _features_of(dataset)
    names = getattr(features.get("label"), "names", None)
    if not names:
        raise KeyError("the dataset has no ClassLabel 'label' column: not a built SDME dataset")
    return list(names)


__all__ = ["feature_dims", "load_dataset", "resolve_built", "taxonomy"]
