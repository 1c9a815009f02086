"""Vision features from pretrained image encoders (CLIP, ViT) applied to the speaker's face.

The frames and faces are those of the ``face`` extractor (``sdme.features.vision``: frames
sampled at ``fps``, one face per frame found by MTCNN, eye-levelled crops): each RGB face crop,
cut at the encoder's input size and prepared by the model's own image processor, is embedded by

- ``clip``: the image tower of CLIP (Radford et al., 2021, "Learning Transferable Visual Models
  From Natural Language Supervision"; e.g. ``openai/clip-vit-base-patch32``, MIT): by default its
  projected image embedding (``image_embeds``), the feature MERBench reports for CLIP;
- ``vit``: a ViT-family encoder (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"; e.g.
  ``google/vit-base-patch16-224-in21k``, Apache-2.0; DeiT, BEiT and DINOv2 checkpoints load the
  same way): by default its final token states pooled by ``pooling`` (the ``[CLS]`` token, or the
  mean over tokens).

``layer=k`` takes hidden state ``k`` instead (0: the patch embeddings; negative values count
from the last), pooled by ``pooling``. One vector per frame with a face; a clip with no face in
any frame raises ``ClipError("no_face")``, as ``face`` does.

Weights are read from a local folder or the Hugging Face cache only (``model=...``;
``sdme.features.pretrained``); provenance records hashes of the config, the image-processor
settings and the weights. The offline fixtures build tiny randomly initialised models from a
config (:func:`tiny_image_model`), so the contract test runs the real loading and extraction code
without a download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdme.features import Extractor, ExtractorInfo, register_extractor
from sdme.features.pretrained import LocalModel
from sdme.features.vision import FaceFramesParams, _FaceFramesExtractor
from sdme.schema import RawClip

CLIP_TYPES = ("clip", "clip_vision_model")


@dataclass(frozen=True)
class ImageEncoderParams(FaceFramesParams):
    """Parameters of ``clip`` and ``vit``: frame sampling and face finding
    (:class:`~sdme.features.vision.FaceFramesParams`), plus

    Attributes:
        model: Local folder or cached Hugging Face id of the encoder (required).
        revision: Cached revision of a Hub id (default: the cache's ``main``).
        layer: Hidden state to take (None: the encoder's own image embedding, see the module
            docstring); negative values count from the last.
        pooling: How a hidden state's tokens become one vector: ``"cls"`` (the first token) or
            ``"mean"``.
    """

    model: str | None = None
    revision: str | None = None
    layer: int | None = None
    pooling: Literal["cls", "mean"] = "cls"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")


def tiny_image_model(folder: str | Path, model_type: str = "vit", image_size: int = 32,
                     hidden_size: int = 16) -> Path:
    """Writes a tiny randomly initialised ``"clip"`` or ``"vit"`` model (two layers, 8-pixel
    patches) and its image processor to ``folder``, made from a config with no download: local
    weights for tests and benchmarks."""
    import torch
    from transformers import (
        AutoModel,
        CLIPConfig,
        CLIPImageProcessor,
        ViTConfig,
        ViTImageProcessor,
    )

    folder = Path(folder)
    tower = {"hidden_size": hidden_size, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 2 * hidden_size}
    if model_type == "clip":
        config = CLIPConfig(
            text_config={**tower, "vocab_size": 64, "max_position_embeddings": 16,
                         "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
            vision_config={**tower, "image_size": image_size, "patch_size": 8},
            projection_dim=hidden_size // 2)
        processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                       crop_size={"height": image_size, "width": image_size})
    elif model_type == "vit":
        config = ViTConfig(**tower, image_size=image_size, patch_size=8)
        processor = ViTImageProcessor(size={"height": image_size, "width": image_size})
    else:
        raise ValueError(f"model_type must be 'clip' or 'vit', got {model_type!r}")
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


class ImageEncoderExtractor(_FaceFramesExtractor):
    """A pretrained image encoder's embedding of the face crop per frame with a face,
    ``[frames with a face, dim]``; subclasses name the family.

    Args:
        params: :class:`ImageEncoderParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"
    NAME = ""

    def __init__(self, params: ImageEncoderParams | None = None, device: str = "cpu") -> None:
        params = params or ImageEncoderParams()
        super().__init__(params, device)
        is_clip = self.NAME == "clip"
        self.local = LocalModel(params.model, params.revision, extractor=f"vision/{self.NAME}",
                                model_types=CLIP_TYPES if is_clip else None,
                                processor="image_processor")
        self.local.to(device)  # loaded there on first use
        config = self.local.config
        if not is_clip and config.model_type in CLIP_TYPES:
            raise ValueError(f"{params.model}: a CLIP model; use the 'clip' vision extractor")
        vision = getattr(config, "vision_config", None) or config
        layers = int(vision.num_hidden_layers) + 1
        if params.layer is not None and not -layers <= params.layer < layers:
            raise ValueError(f"layer {params.layer} does not exist: {params.model} has hidden "
                             f"states 0..{layers - 1} (or -{layers}..-1)")
        self.layer = None if params.layer is None else int(params.layer) % layers
        self.pooling = params.pooling
        self.image_size = int(vision.image_size)
        # A whole CLIP model projects its pooled image state; a vision-only one has no head.
        self.projected = is_clip and self.layer is None and config.model_type == "clip"
        dim = int(config.projection_dim) if self.projected else int(vision.hidden_size)
        if self.projected:
            output = "image_embeds"
        elif is_clip and self.layer is None:
            output = "pooler_output"
        else:
            output = f"{'hidden_states' if self.layer is not None else 'last_hidden_state'}" \
                     f"/{self.pooling}"
        self.info = ExtractorInfo(
            name=self.NAME, version=self.VERSION, modality="vision", dim=dim,
            params={**self.local.provenance(), "layer": self.layer, "output": output,
                    "image_size": self.image_size, "fps": self.fps, "margin": self.margin,
                    "align": self.align, "min_face_size": self.detector.min_face_size,
                    "selection": self.detector.selection, "max_frames": self.max_frames,
                    "max_side": self.max_side},
        )

    def load(self) -> Extractor:
        super().load()  # the decoder and MTCNN
        self.local.load()
        return self

    def to(self, device: str) -> Extractor:
        super().to(device)
        self.local.to(device)
        return self

    def embed(self, crops: Any) -> np.ndarray:
        """Embeddings of face crops (``[K, 3, H, W]`` float tensor in [0, 1]), ``[K, dim]``."""
        import torch

        model = self.local.model
        out = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.detector.batch_size):
                batch = self.local.processor(images=crops[start:start + self.detector.batch_size],
                                             return_tensors="pt", do_rescale=False)
                out.append(self._forward(model, batch["pixel_values"].to(self.device)).float()
                           .cpu())
        return torch.cat(out).numpy().astype(np.float32)

    def _forward(self, model: Any, pixels: Any) -> Any:
        tower = getattr(model, "vision_model", model)  # CLIPModel's image tower, or the model
        hidden = self.layer is not None
        result = tower(pixel_values=pixels, output_hidden_states=hidden)
        if self.layer is None and self.NAME == "clip":
            pooled = result.pooler_output
            return model.visual_projection(pooled) if self.projected else pooled
        tokens = result.hidden_states[self.layer] if hidden else result.last_hidden_state
        return tokens[:, 0] if self.pooling == "cls" else tokens.mean(dim=1)

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        video, detections = self._frames_and_faces(raw_dir, clip)
        crops = self.detector.crops(video.frames, detections, size=self.image_size,
                                    margin=self.margin, grayscale=False, align=self.align)
        return self.embed(crops)


def _fixture(model_type: str):  # noqa: ANN202 - the registration's fixture
    def fixture(workdir: Path) -> dict[str, Any]:
        folder = tiny_image_model(Path(workdir) / f"tiny-{model_type}", model_type)
        return {"model": str(folder), "fps": 2.0}

    return fixture


@register_extractor("vision", "clip", params=ImageEncoderParams, fixture=_fixture("clip"),
                    requires=("transformers",))
class CLIPFaceExtractor(ImageEncoderExtractor):
    """CLIP image embeddings of the face crops (local weights, e.g.
    openai/clip-vit-base-patch32)."""

    NAME = "clip"


@register_extractor("vision", "vit", params=ImageEncoderParams, fixture=_fixture("vit"),
                    requires=("transformers",))
class ViTFaceExtractor(ImageEncoderExtractor):
    """ViT-family embeddings of the face crops (local weights, e.g.
    google/vit-base-patch16-224-in21k)."""

    NAME = "vit"


__all__ = ["CLIP_TYPES", "CLIPFaceExtractor", "ImageEncoderExtractor", "ImageEncoderParams",
           "ViTFaceExtractor", "tiny_image_model"]
