"""Face detection (MTCNN) and aligned face crops for a clip's frames.

Detection uses facenet-pytorch's MTCNN (https://github.com/timesler/facenet-pytorch, MIT; Zhang
et al., 2016, "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", IEEE SPL 23(10)), whose P/R/O-Net weights ship inside the wheel, so it runs offline.
Frames go in as one uint8 torch tensor per batch (numpy input would need OpenCV), and one face
per frame is kept: the most confident (``selection="probability"``) or the largest.

Crops are made here rather than with MTCNN's PIL-based ``extract``: one batched
``affine_grid``/``grid_sample`` per clip cuts a square of side ``max(w, h) * (1 + margin)``
around each box centre, rotated so that the eyes are level (in-plane alignment from the two eye
landmarks), sampled with 4x4 supersampling and average pooling to avoid aliasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SELECTIONS: tuple[str, ...] = ("probability", "largest")
LANDMARK_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma
GEOMETRY_DIM = 16  # see landmark_geometry


@dataclass(frozen=True)
class FaceDetections:
    """One face (or none) per frame.

    Attributes:
        found: ``[N]`` bool, whether a face was kept in each frame.
        boxes: ``[N, 4]`` float32 ``x1, y1, x2, y2`` in pixels (NaN where no face).
        probs: ``[N]`` float32 detection probability (0 where no face).
        landmarks: ``[N, 5, 2]`` float32 ``(x, y)`` pixels of ``LANDMARK_NAMES`` (NaN where none).
        frame_size: ``(height, width)`` of the frames.
    """

    found: np.ndarray
    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray
    frame_size: tuple[int, int]

    @property
    def count(self) -> int:
        return int(self.found.sum())


def _check_frames(frames: torch.Tensor) -> None:
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = tuple(frames.shape) if hasattr(frames, "shape") else type(frames).__name__
        raise ValueError(f"frames must be a [N, H, W, 3] torch tensor, got {shape}")


def roll_angles(landmarks: np.ndarray) -> np.ndarray:
    """In-plane rotation (radians) of each face: the angle of the line from left to right eye."""
    delta = landmarks[..., 1, :] - landmarks[..., 0, :]
    return np.arctan2(delta[..., 1], delta[..., 0]).astype(np.float32)


def crop_faces(frames: torch.Tensor, frame_index: np.ndarray, boxes: np.ndarray,
               landmarks: np.ndarray | None, size: int, margin: float = 0.25,
               grayscale: bool = True, supersample: int = 4) -> torch.Tensor:
    """Cuts square, eye-levelled face crops out of frames in one batched resampling.

    Args:
        frames: ``[N, H, W, 3]`` uint8 RGB frames.
        frame_index: ``[K]`` which frame each face is in.
        boxes: ``[K, 4]`` face boxes ``x1, y1, x2, y2`` in pixels.
        landmarks: ``[K, 5, 2]`` landmarks used to level the eyes, or None for upright crops.
        size: Side of the output crops in pixels.
        margin: Extra context around the box, as a fraction of the box's longer side.
        grayscale: Return one luma channel instead of RGB.
        supersample: Samples per output pixel along each axis (averaged).

    Returns:
        ``[K, C, size, size]`` float32 in [0, 1], C = 1 (grayscale) or 3.
    """
    _check_frames(frames)
    count = len(frame_index)
    channels = 1 if grayscale else 3
    if count == 0:
        return torch.zeros((0, channels, size, size), dtype=torch.float32)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    boxes = np.asarray(boxes, dtype=np.float64)
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (1.0 + margin)
    angle = np.zeros(count) if landmarks is None else roll_angles(np.asarray(landmarks)) \
        .astype(np.float64)
    cos, sin = np.cos(angle), np.sin(angle)
    # Only the window holding the (rotated) square is converted to float: reach = half the
    # diagonal, plus 2 px for the bilinear neighbours. Outside the frame, edge pixels repeat.
    reach = side / np.sqrt(2.0) + 2.0
    x0 = np.clip(np.floor(centre_x - reach), 0, width - 1).astype(np.int64)
    x1 = np.clip(np.ceil(centre_x + reach), x0 + 1, width).astype(np.int64)
    y0 = np.clip(np.floor(centre_y - reach), 0, height - 1).astype(np.int64)
    y1 = np.clip(np.ceil(centre_y + reach), y0 + 1, height).astype(np.int64)
    win_w, win_h = (x1 - x0).astype(np.float64), (y1 - y0).astype(np.float64)
    # Output grid (u, v) in [-1, 1]^2 maps to pixel c + R(angle) (side / 2) (u, v); affine_grid
    # wants it in the window's normalised coordinates (align_corners=False: x_n = 2 x / W - 1).
    theta = np.zeros((count, 2, 3))
    theta[:, 0, 0] = side / win_w * cos
    theta[:, 0, 1] = -side / win_w * sin
    theta[:, 0, 2] = 2 * (centre_x - x0) / win_w - 1
    theta[:, 1, 0] = side / win_h * sin
    theta[:, 1, 1] = side / win_h * cos
    theta[:, 1, 2] = 2 * (centre_y - y0) / win_h - 1
    theta_t = torch.as_tensor(theta, dtype=torch.float32, device=frames.device)
    factor = max(1, int(supersample))
    weights = torch.tensor(_GRAY_WEIGHTS, device=frames.device).view(3, 1, 1)
    crops = []
    for k, i in enumerate(np.asarray(frame_index, dtype=np.int64)):
        window = frames[i, y0[k]:y1[k], x0[k]:x1[k]].permute(2, 0, 1).float().div_(255.0)
        if grayscale:
            window = (window * weights).sum(dim=0, keepdim=True)
        grid = F.affine_grid(theta_t[k:k + 1], [1, channels, size * factor, size * factor],
                             align_corners=False)
        crops.append(F.grid_sample(window[None], grid, mode="bilinear", padding_mode="border",
                                   align_corners=False))
    out = torch.cat(crops)
    if factor > 1:
        out = F.avg_pool2d(out, factor)
    return out.clamp_(0.0, 1.0)


class FaceDetector:
    """Batched MTCNN face detection keeping one face per frame.

    The MTCNN networks are loaded on first use (once per detector object) from the weights
    bundled with facenet-pytorch.

    Args:
        device: ``"cpu"`` or a CUDA device.
        min_face_size: Smallest face (pixels) the detection pyramid looks for.
        thresholds: P-, R- and O-Net probability thresholds.
        factor: Scale step of the image pyramid.
        selection: ``"probability"`` (most confident face) or ``"largest"``.
        batch_size: Frames per MTCNN call (bounds memory on long or large videos).
    """

    def __init__(self, device: str = "cpu", min_face_size: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709,
                 selection: str = "probability", batch_size: int = 16) -> None:
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = str(device)
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.selection = selection
        self.batch_size = int(batch_size)
        self._mtcnn = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_mtcnn"] = None  # reloaded lazily in the receiving process
        return state

    @property
    def mtcnn(self):  # noqa: ANN201 - facenet_pytorch.MTCNN, imported lazily
        if self._mtcnn is None:
            from facenet_pytorch import MTCNN

            self._mtcnn = MTCNN(
                min_face_size=self.min_face_size,
                thresholds=list(self.thresholds),
                factor=self.factor,
                keep_all=True,
                select_largest=False,
                post_process=False,
                device=torch.device(self.device),
            ).eval()
        return self._mtcnn

    def to(self, device: str) -> FaceDetector:
        self.device = str(device)
        if self._mtcnn is not None:
            self._mtcnn.to(torch.device(self.device))
            self._mtcnn.device = torch.device(self.device)
        return self

    def detect(self, frames: torch.Tensor) -> FaceDetections:
        """Finds one face per frame.

        Args:
            frames: ``[N, H, W, 3]`` uint8 RGB tensor (as from ``sdme.media.video.read_frames``).
        """
        _check_frames(frames)
        count = int(frames.shape[0])
        found = np.zeros(count, dtype=bool)
        boxes = np.full((count, 4), np.nan, dtype=np.float32)
        probs = np.zeros(count, dtype=np.float32)
        points = np.full((count, 5, 2), np.nan, dtype=np.float32)
        model = self.mtcnn
        for start in range(0, count, self.batch_size):
            chunk = frames[start:start + self.batch_size]
            if chunk.device != torch.device(self.device):
                chunk = chunk.to(self.device)
            batch_boxes, batch_probs, batch_points = model.detect(chunk, landmarks=True)
            for offset, (box, prob, point) in enumerate(zip(batch_boxes, batch_probs,
                                                            batch_points, strict=True)):
                if box is None:
                    continue
                box = np.asarray(box, dtype=np.float32).reshape(-1, 4)
                prob = np.asarray(prob, dtype=np.float32).reshape(-1)
                point = np.asarray(point, dtype=np.float32).reshape(-1, 5, 2)
                if len(box) == 0:
                    continue
                if self.selection == "largest":
                    best = int(np.argmax((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])))
                else:
                    best = int(np.argmax(prob))
                i = start + offset
                found[i] = True
                boxes[i] = box[best]
                probs[i] = prob[best]
                points[i] = point[best]
        return FaceDetections(found=found, boxes=boxes, probs=probs, landmarks=points,
                              frame_size=(int(frames.shape[1]), int(frames.shape[2])))

    def crops(self, frames: torch.Tensor, detections: FaceDetections, size: int,
              margin: float = 0.25, grayscale: bool = True, align: bool = True) -> torch.Tensor:
        """Aligned crops of the detected faces, ``[K, C, size, size]`` for the K frames with one.

        See ``crop_faces`` for the geometry.
        """
        index = np.flatnonzero(detections.found)
        return crop_faces(frames, index, detections.boxes[index],
                          detections.landmarks[index] if align else None,
                          size=size, margin=margin, grayscale=grayscale)


def landmark_geometry(detections: FaceDetections) -> np.ndarray:
    """Shape and pose descriptors of each kept face, ``[K, 16]`` float32.

    Per face: the 5 landmarks normalised to the box (10 values, 0..1 inside the box), the box
    centre and size relative to the frame (4), the detection probability (1) and the in-plane
    roll angle in radians (1).
    """
    index = np.flatnonzero(detections.found)
    boxes = detections.boxes[index].astype(np.float32)
    points = detections.landmarks[index].astype(np.float32)
    height, width = detections.frame_size
    box_w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-6)
    box_h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-6)
    rel_x = (points[:, :, 0] - boxes[:, None, 0]) / box_w[:, None]
    rel_y = (points[:, :, 1] - boxes[:, None, 1]) / box_h[:, None]
    rel = np.stack([rel_x, rel_y], axis=-1).reshape(len(index), 10)
    centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / (2 * width),
                       (boxes[:, 1] + boxes[:, 3]) / (2 * height)], axis=1)
    size = np.stack([box_w / width, box_h / height], axis=1)
    prob = detections.probs[index, None]
    roll = roll_angles(points)[:, None]
    return np.concatenate([rel, centre, size, prob, roll], axis=1).astype(np.float32)

