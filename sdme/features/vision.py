"""Vision features: the speaker's face, frame by frame.

``face`` (default): frames sampled at ``fps`` (decord; scaled down by the decoder to at most
``max_side`` pixels, 640 by default, which keeps faces far above the crop size while bounding
MTCNN's cost on HD video), one face per frame found by MTCNN
(``sdme.media.faces``), and for each frame with a face a vector of

- the eye-levelled grayscale face crop, ``crop_size x crop_size``, standardised per crop (zero
  mean, unit variance), flattened — the appearance a model can learn expressions from (cf. the
  48x48 grayscale crops of FER2013, Goodfellow et al., 2013);
- 16 geometry values (``sdme.media.faces.landmark_geometry``): the 5 MTCNN landmarks normalised
  to the box, box centre and size relative to the frame, detection probability, roll angle.

Frames without a face are left out of the sequence; a clip with no face in any frame raises
``ClipError("no_face")``.

``facenet``: the same frames and faces embedded by InceptionResnetV1 (Schroff et al., 2015,
"FaceNet"; weights of facenet-pytorch, trained on VGGFace2, MIT). The weights are not bundled:
they are read from a local file only (``weights_path``, or facenet-pytorch's own cache). Its
offline fixture writes randomly initialised weights in the released file's layout.

Both take the frame-sampling parameters of :class:`FaceFramesParams`; its ``fps`` (5 frames per
second) is the one default of how often video is sampled (``sdme build --fps`` sets it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, register_extractor
from sdme.schema import RawClip, clip_media_path

FACENET_WEIGHTS_FILE = "20180402-114759-vggface2.pt"
FACENET_WEIGHTS_URL = ("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
                       + FACENET_WEIGHTS_FILE)


@dataclass(frozen=True)
class FaceFramesParams:
    """How the face extractors sample frames and find faces.

    Attributes:
        fps: Frames sampled per second of video.
        margin: Context kept around the face box, as a share of its size.
        align: Rotate the crop so that the eyes are level.
        min_face_size: Smallest face MTCNN looks for, in pixels.
        selection: Which face of a frame is kept (``sdme.media.faces.FaceDetector``).
        max_frames: Most frames sampled per clip (None: no limit).
        max_side: Frames are decoded at most this many pixels on their longer side.
        batch_size: Frames per MTCNN batch.
        decode_threads: Decoder threads.
    """

    fps: float = 5.0
    margin: float = 0.25
    align: bool = True
    min_face_size: int = 20
    selection: str = "probability"
    max_frames: int | None = None
    max_side: int | None = 640
    batch_size: int = 16
    decode_threads: int = 1

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass(frozen=True)
class FaceParams(FaceFramesParams):
    """Parameters of ``face``: frame sampling, plus the crop size in pixels."""

    crop_size: int = 32

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crop_size < 4:
            raise ValueError(f"crop_size must be >= 4, got {self.crop_size}")


@dataclass(frozen=True)
class FaceNetParams(FaceFramesParams):
    """Parameters of ``facenet``: frame sampling, plus the local weights file (default:
    facenet-pytorch's cache, ``default_facenet_weights()``)."""

    weights_path: Path | None = None


class _FaceFramesExtractor(Extractor):
    """Shared part of the face extractors: decode frames, detect one face per frame."""

    def __init__(self, params: FaceFramesParams, device: str) -> None:
        from sdme.media.faces import FaceDetector

        self.fps = float(params.fps)
        self.max_frames = None if params.max_frames is None else int(params.max_frames)
        self.max_side = None if params.max_side is None else int(params.max_side)
        self.decode_threads = int(params.decode_threads)
        self.margin = float(params.margin)
        self.align = bool(params.align)
        self.detector = FaceDetector(device=device, min_face_size=params.min_face_size,
                                     selection=params.selection, batch_size=params.batch_size)
        self.device = str(device)

    def load(self) -> Extractor:
        import decord  # noqa: F401 - the decoder's import is part of loading

        self.detector.mtcnn  # noqa: B018 - builds MTCNN now
        return self

    def to(self, device: str) -> Extractor:
        super().to(device)
        self.detector.to(device)
        return self

    def _frames_and_faces(self, raw_dir: Path, clip: RawClip):  # noqa: ANN202
        from sdme.media.video import read_frames

        path = clip_media_path(raw_dir, clip.clip_id)
        video = read_frames(path, fps=self.fps, max_frames=self.max_frames,
                            num_threads=self.decode_threads, max_side=self.max_side)
        detections = self.detector.detect(video.frames)
        if detections.count == 0:
            raise ClipError(path, "no_face",
                            f"no face found in any of {len(video.indices)} frames sampled at "
                            f"{self.fps:g} fps")
        return video, detections


@register_extractor("vision", "face", params=FaceParams)
class FaceCropExtractor(_FaceFramesExtractor):
    """Standardised grayscale face crop plus landmark geometry per frame with a face (default,
    offline).

    Args:
        params: :class:`FaceParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"

    def __init__(self, params: FaceParams | None = None, device: str = "cpu") -> None:
        from sdme.media.faces import GEOMETRY_DIM

        params = params or FaceParams()
        super().__init__(params, device)
        self.crop_size = int(params.crop_size)
        self.info = ExtractorInfo(
            name="face", version=self.VERSION, modality="vision",
            dim=self.crop_size * self.crop_size + GEOMETRY_DIM,
            params={"fps": self.fps, "crop_size": self.crop_size, "margin": self.margin,
                    "align": self.align, "min_face_size": self.detector.min_face_size,
                    "selection": self.detector.selection, "max_frames": self.max_frames,
                    "max_side": self.max_side, "grayscale": True, "standardise_crop": True},
        )

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        from sdme.media.faces import landmark_geometry

        video, detections = self._frames_and_faces(raw_dir, clip)
        crops = self.detector.crops(video.frames, detections, size=self.crop_size,
                                    margin=self.margin, grayscale=True, align=self.align)
        flat = crops.flatten(1).cpu().numpy().astype(np.float32)
        flat -= flat.mean(axis=1, keepdims=True)
        flat /= np.maximum(flat.std(axis=1, keepdims=True), 1e-3)
        return np.concatenate([flat, landmark_geometry(detections)], axis=1)


def default_facenet_weights() -> Path:
    """Where facenet-pytorch caches the VGGFace2 weights (``$TORCH_HOME/checkpoints``)."""
    torch_home = os.getenv("TORCH_HOME",
                           os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch"))
    return Path(os.path.expanduser(torch_home)) / "checkpoints" / FACENET_WEIGHTS_FILE


def random_facenet_weights(path: str | Path) -> Path:
    """Writes randomly initialised InceptionResnetV1 weights, in the released file's layout
    (logits included), to ``path``: local weights for tests."""
    import torch
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(InceptionResnetV1(classify=True, num_classes=3).state_dict(), path)
    return path


def _facenet_fixture(workdir: Path) -> dict[str, Any]:
    return {"weights_path": str(random_facenet_weights(Path(workdir) / "facenet.pt")),
            "fps": 2.0}


@register_extractor("vision", "facenet", params=FaceNetParams, fixture=_facenet_fixture)
class FaceNetExtractor(_FaceFramesExtractor):
    """512-d InceptionResnetV1 embedding of the 160x160 RGB face crop per frame with a face.

    Args:
        params: :class:`FaceNetParams`.
        device: ``"cpu"`` or a CUDA device.
    """

    VERSION = "1"
    IMAGE_SIZE = 160

    def __init__(self, params: FaceNetParams | None = None, device: str = "cpu") -> None:
        params = params or FaceNetParams()
        super().__init__(params, device)
        weights_path = params.weights_path
        path = Path(weights_path).expanduser() if weights_path else default_facenet_weights()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: InceptionResnetV1 weights not found. They are not bundled and are never "
                f"downloaded during a build. Fetch {FACENET_WEIGHTS_URL} on a machine with "
                f"network (or run `python -c \"from facenet_pytorch import InceptionResnetV1; "
                f"InceptionResnetV1(pretrained='vggface2')\"`, which saves it to "
                f"{default_facenet_weights()}), then pass weights_path=... "
                f"or use the default offline vision extractor 'face'."
            )
        self.weights_path = path
        self._model = None
        self.info = ExtractorInfo(
            name="facenet", version=self.VERSION, modality="vision", dim=512,
            params={"weights": path.name, "fps": self.fps, "margin": self.margin,
                    "align": self.align, "min_face_size": self.detector.min_face_size,
                    "selection": self.detector.selection, "max_frames": self.max_frames,
                    "max_side": self.max_side, "image_size": self.IMAGE_SIZE},
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    def load(self) -> FaceNetExtractor:
        super().load()
        self.model  # noqa: B018 - loads the weights now
        return self

    @property
    def model(self):  # noqa: ANN201 - facenet_pytorch.InceptionResnetV1, imported lazily
        if self._model is None:
            import torch
            from facenet_pytorch import InceptionResnetV1

            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("logits.")}
            model = InceptionResnetV1(classify=False)
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ValueError(f"{self.weights_path}: not an InceptionResnetV1 state dict "
                                 f"({str(exc).splitlines()[0]})") from exc
            self._model = model.eval().to(self.device)
        return self._model

    def extract(self, raw_dir: Path, clip: RawClip) -> np.ndarray:
        import torch

        video, detections = self._frames_and_faces(raw_dir, clip)
        crops = self.detector.crops(video.frames, detections, size=self.IMAGE_SIZE,
                                    margin=self.margin, grayscale=False, align=self.align)
        # facenet-pytorch's fixed_image_standardization: (x - 127.5) / 128 on 0..255 pixels.
        inputs = (crops * 255.0 - 127.5) / 128.0
        model = self.model
        out = []
        with torch.inference_mode():
            for start in range(0, len(inputs), self.detector.batch_size):
                batch = inputs[start:start + self.detector.batch_size].to(self.device)
                out.append(model(batch).float().cpu())
        return torch.cat(out).numpy().astype(np.float32)
