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
they are read from a local file only (``weights_path``, or facenet-pytorch's own cache).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from sdme.features import ClipError, Extractor, ExtractorInfo, register_extractor
from sdme.schema import RawClip, clip_media_path

FACENET_WEIGHTS_FILE = "20180402-114759-vggface2.pt"
FACENET_WEIGHTS_URL = ("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
                       + FACENET_WEIGHTS_FILE)


class _FaceFramesExtractor(Extractor):
    """Shared part of the face extractors: decode frames, detect one face per frame."""

    def __init__(self, fps: float, max_frames: int | None, max_side: int | None,
                 min_face_size: int, selection: str, batch_size: int, decode_threads: int,
                 device: str) -> None:
        from sdme.media.faces import FaceDetector

        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.max_frames = None if max_frames is None else int(max_frames)
        self.max_side = None if max_side is None else int(max_side)
        self.decode_threads = int(decode_threads)
        self.detector = FaceDetector(device=device, min_face_size=min_face_size,
                                     selection=selection, batch_size=batch_size)
        self.device = str(device)

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


class FaceCropExtractor(_FaceFramesExtractor):
    """Standardised grayscale face crop plus landmark geometry per frame with a face."""

    VERSION = "1"

    def __init__(self, fps: float = 5.0, crop_size: int = 32, margin: float = 0.25,
                 align: bool = True, min_face_size: int = 20, selection: str = "probability",
                 max_frames: int | None = None, max_side: int | None = 640,
                 batch_size: int = 16, decode_threads: int = 1, device: str = "cpu") -> None:
        from sdme.media.faces import GEOMETRY_DIM

        super().__init__(fps, max_frames, max_side, min_face_size, selection, batch_size,
                         decode_threads, device)
        if crop_size < 4:
            raise ValueError(f"crop_size must be >= 4, got {crop_size}")
        self.crop_size = int(crop_size)
        self.margin = float(margin)
        self.align = bool(align)
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


class FaceNetExtractor(_FaceFramesExtractor):
    """512-d InceptionResnetV1 embedding of the 160x160 RGB face crop per frame with a face."""

    VERSION = "1"
    IMAGE_SIZE = 160

    def __init__(self, weights_path: str | Path | None = None, fps: float = 5.0,
                 margin: float = 0.25, align: bool = True, min_face_size: int = 20,
                 selection: str = "probability", max_frames: int | None = None,
                 max_side: int | None = 640, batch_size: int = 16, decode_threads: int = 1,
                 device: str = "cpu") -> None:
        super().__init__(fps, max_frames, max_side, min_face_size, selection, batch_size,
                         decode_threads, device)
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
        self.margin = float(margin)
        self.align = bool(align)
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


@register_extractor("vision", "face")
def face(**params: Any) -> Extractor:
    """Face crop + landmark geometry (default, offline). See ``FaceCropExtractor``."""
    return FaceCropExtractor(**params)


@register_extractor("vision", "facenet")
def facenet(**params: Any) -> Extractor:
    """InceptionResnetV1 face embeddings from local weights. See ``FaceNetExtractor``."""
    return FaceNetExtractor(**params)
