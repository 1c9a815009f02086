"""Regenerates SDME's bundled sample corpus, byte for byte.

    python scripts/make_sample_corpus.py [--out DIR]      # default: sdme/data/sample

The sample corpus is a small, real-media corpus in the SDME raw layout (``sdme.json``,
``annotations.csv``, ``clips/<clip_id>.mp4``, ``README.md``) that ships inside the package, so
the whole pipeline (download, build, train, benchmark) runs offline. Its labels and unimodal
votes are constructed by this script (see ``CLIP_PLAN``), not human judgements.

Each clip is built per modality:

* text   — a transcript from a small bank of English sentences whose words express the clip's
  text emotion (``SENTENCES``);
* audio  — Debian's espeak-ng (https://github.com/espeak-ng/espeak-ng, GPL-3.0) speaking the
  transcript, with pitch, speed and amplitude set by the audio emotion (``AUDIO_STYLES``),
  resampled to 16 kHz mono and encoded as AAC;
* vision — a real face photo moving on a background, with an emotion-specific colour tint,
  motion pattern and mouth-region warp (``VISION_STYLES``), encoded as H.264 (yuv420p). Faces:
  ``skimage.data.astronaut()`` (NASA portrait of Eileen Collins, public domain) and five faces of
  ``skimage.data.lfw_subset()`` (Labeled Faces in the Wild, Huang et al. 2007,
  http://vis-www.cs.umass.edu/lfw/), both bundled with scikit-image.

Determinism: every random draw comes from ``numpy.random.default_rng`` seeded by ``SEED`` and the
clip's index; pixels and audio samples are computed with element-wise float64 arithmetic only (no
array transcendental functions, whose SIMD variants differ between CPUs); RGB→YUV is integer
arithmetic; x264 runs single-threaded with fixed options; the AAC and MP4 writers run in bitexact
mode; x264 and FFmpeg run their plain C code, not the SIMD variants they would pick for the CPU
(x264's and FFmpeg's float SIMD routines round differently from one CPU to the next). The
result depends on the versions of PyAV (``av==18.1.0``, which bundles FFmpeg and x264) and
espeak-ng (recorded in ``sdme.json``).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import math
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from sdme.fileio import swap_in_dir  # noqa: E402
from sdme.relevance import agreement_by_modality, compute_relevance  # noqa: E402
from sdme.schema import (  # noqa: E402
    ANNOTATIONS_NAME,
    CLIPS_DIR,
    DEFAULT_TAXONOMY,
    MANIFEST_NAME,
    MODALITIES,
    CorpusManifest,
    RawClip,
    make_manifest_files,
    write_annotations,
)

DEFAULT_OUT = REPO_ROOT / "sdme" / "data" / "sample"
CORPUS_NAME = "sample"
CORPUS_VERSION = "1.0.0"
LICENSE = "CC-BY-4.0"
SEED = 20261124

FPS = 15
FRAME_SIZE = 192
SAMPLE_RATE = 16_000
AAC_BIT_RATE = 48_000
X264_CRF = 21
MIN_SECONDS, MAX_SECONDS = 2.0, 4.0
FRAMES_PER_STEP = 3  # durations are multiples of 0.2 s: whole video frames and audio samples
N_ANNOTATORS = 5
VOTE_ACCURACY = 0.8  # chance that a simulated annotator votes the expressed emotion
EXPRESSION_ONSET_S = 0.4  # an expression builds up over this long at the start of a clip
SPEECH_PADDING_S = 0.3  # silence around the speech, in all

# --------------------------------------------------------------------------------------------
# The clip plan: one row per clip, grouped by source video (consecutive clips of one video).
# label = the clip's multimodal emotion; text/audio/vision = what each modality expresses.
# A modality expressing something other than the label deviates; deviation = their number.
# --------------------------------------------------------------------------------------------

VIDEO_SPEAKER = {
    "vid01": "spk01", "vid02": "spk01", "vid03": "spk02", "vid04": "spk02",
    "vid05": "spk03", "vid06": "spk03", "vid07": "spk04", "vid08": "spk04",
    "vid09": "spk05", "vid10": "spk05", "vid11": "spk06", "vid12": "spk06",
}

CLIP_PLAN: tuple[tuple[str, str, str, str, str], ...] = (
    # video    label        text         audio        vision         deviation
    ("vid01", "neutral", "neutral", "neutral", "neutral"),  # 0
    ("vid01", "happiness", "happiness", "happiness", "neutral"),  # 1 vision
    ("vid01", "sadness", "sadness", "sadness", "sadness"),  # 0
    ("vid02", "anger", "neutral", "anger", "anger"),  # 1 text
    ("vid02", "surprise", "happiness", "surprise", "neutral"),  # 2 text, vision
    ("vid02", "fear", "neutral", "sadness", "surprise"),  # 3
    ("vid03", "disgust", "disgust", "disgust", "disgust"),  # 0
    ("vid03", "neutral", "neutral", "sadness", "neutral"),  # 1 audio
    ("vid03", "happiness", "happiness", "happiness", "happiness"),  # 0
    ("vid03", "sadness", "neutral", "sadness", "neutral"),  # 2 text, vision
    ("vid04", "anger", "anger", "neutral", "anger"),  # 1 audio
    ("vid04", "surprise", "neutral", "happiness", "fear"),  # 3
    ("vid05", "fear", "fear", "fear", "fear"),  # 0
    ("vid05", "disgust", "disgust", "disgust", "neutral"),  # 1 vision
    ("vid05", "neutral", "neutral", "neutral", "neutral"),  # 0
    ("vid06", "happiness", "neutral", "happiness", "surprise"),  # 2 text, vision
    ("vid06", "sadness", "sadness", "neutral", "sadness"),  # 1 audio
    ("vid06", "anger", "disgust", "neutral", "anger"),  # 2 text, audio
    ("vid07", "surprise", "surprise", "surprise", "surprise"),  # 0
    ("vid07", "fear", "neutral", "fear", "fear"),  # 1 text
    ("vid08", "disgust", "disgust", "disgust", "disgust"),  # 0
    ("vid08", "neutral", "happiness", "neutral", "neutral"),  # 1 text
    ("vid08", "happiness", "happiness", "neutral", "neutral"),  # 2 audio, vision
    ("vid08", "sadness", "neutral", "anger", "fear"),  # 3
    ("vid09", "anger", "anger", "anger", "anger"),  # 0
    ("vid09", "surprise", "surprise", "surprise", "happiness"),  # 1 vision
    ("vid09", "fear", "fear", "fear", "fear"),  # 0
    ("vid10", "disgust", "disgust", "anger", "neutral"),  # 2 audio, vision
    ("vid10", "neutral", "neutral", "neutral", "sadness"),  # 1 vision
    ("vid10", "happiness", "neutral", "surprise", "neutral"),  # 3
    ("vid11", "sadness", "sadness", "sadness", "sadness"),  # 0
    ("vid11", "anger", "anger", "disgust", "anger"),  # 1 audio
    ("vid11", "surprise", "surprise", "surprise", "surprise"),  # 0
    ("vid11", "fear", "fear", "neutral", "neutral"),  # 2 audio, vision
    ("vid12", "disgust", "neutral", "disgust", "anger"),  # 2 text, vision
    ("vid12", "neutral", "neutral", "neutral", "happiness"),  # 1 vision
)

# Simulated annotators confuse an emotion with these (first one more often).
CONFUSABLE = {
    "neutral": ("sadness", "happiness"),
    "happiness": ("surprise", "neutral"),
    "sadness": ("neutral", "fear"),
    "anger": ("disgust", "neutral"),
    "surprise": ("happiness", "fear"),
    "fear": ("surprise", "sadness"),
    "disgust": ("anger", "neutral"),
}

# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------

SENTENCES = {
    "neutral": (
        "The meeting starts at ten.",
        "I put the files on the desk.",
        "The train leaves from platform two.",
        "We moved the chairs upstairs.",
        "The report has four pages.",
        "The shop closes at six.",
        "The bus stops near the bank.",
        "Please sign the form below.",
        "The box goes on the shelf.",
    ),
    "happiness": (
        "I am so happy to see you!",
        "This is the best day ever!",
        "We won, and I am thrilled!",
        "I love this song so much.",
        "That made me really glad.",
    ),
    "sadness": (
        "I miss her so much.",
        "Nothing feels right anymore.",
        "I lost my old dog today.",
        "I feel so alone tonight.",
        "It hurts that he left.",
    ),
    "anger": (
        "Stop lying to me right now!",
        "I am furious with you!",
        "This is completely unacceptable!",
        "Get out of my office!",
        "You ruined everything again!",
    ),
    "surprise": (
        "Wait, you did what?",
        "I can't believe it, really?",
        "Wow, I never expected that!",
        "No way, is that true?",
        "Oh! Where did that come from?",
    ),
    "fear": (
        "I am scared of the dark.",
        "Please don't hurt me.",
        "Something is following us.",
        "I'm terrified of what comes next.",
        "Did you hear that noise?",
    ),
    "disgust": (
        "That smell makes me sick.",
        "Ugh, this food is rotten.",
        "How revolting, take it away.",
        "That is absolutely disgusting.",
        "I can't stand that filth.",
    ),
}


def pick_transcript(emotion: str, occurrence: int) -> str:
    """The ``occurrence``-th use of an emotion's sentence bank (cycles through the bank)."""
    bank = SENTENCES[emotion]
    return bank[occurrence % len(bank)]


# --------------------------------------------------------------------------------------------
# Audio: espeak-ng, then a bit-reproducible resampler to 16 kHz
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioStyle:
    """espeak-ng settings through which an emotion is heard.

    Attributes:
        pitch: ``-p`` (0-99), added to the speaker's pitch offset.
        speed: ``-s`` words per minute.
        amplitude: ``-a`` (0-200).
    """

    pitch: int
    speed: int
    amplitude: int


AUDIO_STYLES = {
    "neutral": AudioStyle(pitch=45, speed=150, amplitude=100),
    "happiness": AudioStyle(pitch=72, speed=185, amplitude=130),
    "sadness": AudioStyle(pitch=22, speed=115, amplitude=55),
    "anger": AudioStyle(pitch=40, speed=200, amplitude=190),
    "surprise": AudioStyle(pitch=88, speed=170, amplitude=145),
    "fear": AudioStyle(pitch=76, speed=210, amplitude=75),
    "disgust": AudioStyle(pitch=18, speed=130, amplitude=115),
}

RESAMPLE_HALF_TAPS = 16
RESAMPLE_CUTOFF_HZ = 7_200.0


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    words = out.stdout.split()
    return words[words.index("text-to-speech:") + 1] if "text-to-speech:" in words else "?"


def synthesize(text: str, voice: str, style: AudioStyle, pitch_offset: int, speed: int,
               workdir: Path) -> tuple[np.ndarray, int]:
    """Speaks ``text`` with espeak-ng; returns (int16 samples trimmed of silence, rate)."""
    wav_path = workdir / "speech.wav"
    pitch = min(99, max(0, style.pitch + pitch_offset))
    cmd = ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed),
           "-a", str(style.amplitude), "-w", str(wav_path), text]
    subprocess.run(cmd, check=True, capture_output=True)
    with wave.open(str(wav_path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise RuntimeError(f"{wav_path}: espeak-ng wrote an unexpected wav format")
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
    voiced = np.flatnonzero(np.abs(samples.astype(np.int32)) > 64)
    if voiced.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {text!r}")
    margin = rate // 20
    return samples[max(0, voiced[0] - margin): voiced[-1] + margin], rate


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Windowed-sinc polyphase resampling of int16 samples to float64 in [-1, 1].

    The filter table is computed with scalar ``math`` functions and applied tap by tap with
    element-wise multiply-adds, so the result is the same on every CPU.
    """
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    cutoff = min(RESAMPLE_CUTOFF_HZ, 0.45 * rate_out) / (rate_in / 2)  # of input Nyquist
    offsets = range(-RESAMPLE_HALF_TAPS + 1, RESAMPLE_HALF_TAPS + 1)
    table = np.empty((up, len(offsets)))
    for phase in range(up):
        row = []
        for k in offsets:
            tau = k - phase / up
            x = math.pi * cutoff * tau
            sinc = 1.0 if tau == 0 else math.sin(x) / x
            window = 0.5 * (1.0 + math.cos(math.pi * tau / RESAMPLE_HALF_TAPS))
            row.append(cutoff * sinc * window)
        total = math.fsum(row)
        table[phase] = [w / total for w in row]
    x = samples.astype(np.float64) / 32768.0
    x = np.concatenate([np.zeros(RESAMPLE_HALF_TAPS), x, np.zeros(RESAMPLE_HALF_TAPS + 1)])
    n_out = len(samples) * up // down
    pos = np.arange(n_out, dtype=np.int64) * down
    base, phase = pos // up + RESAMPLE_HALF_TAPS, pos % up
    out = np.zeros(n_out)
    for j, k in enumerate(offsets):
        out = out + x[base + k] * table[phase, j]
    return out


def render_audio(text: str, speaker: Speaker, emotion: str,
                 workdir: Path) -> tuple[np.ndarray, int]:
    """Speech for one clip, centred in a clip of 2-4 s.

    Returns:
        (float32 mono samples at SAMPLE_RATE, the clip's number of video frames).
    """
    style = AUDIO_STYLES[emotion]
    speed = style.speed
    limit = int((MAX_SECONDS - SPEECH_PADDING_S) * SAMPLE_RATE)
    for _ in range(6):
        raw, rate = synthesize(text, speaker.voice, style, speaker.pitch_offset, speed, workdir)
        speech = resample(raw, rate)
        if len(speech) <= limit:
            break
        speed = int(math.ceil(speed * len(speech) / (limit * 0.97)))  # speak faster and retry
    else:
        raise RuntimeError(f"could not fit {text!r} into {MAX_SECONDS} s")
    seconds = max(MIN_SECONDS, len(speech) / SAMPLE_RATE + SPEECH_PADDING_S)
    step = FRAMES_PER_STEP
    n_frames = int(math.ceil(seconds * FPS / step)) * step
    n_samples = n_frames * SAMPLE_RATE // FPS
    audio = np.zeros(n_samples)
    lead = (n_samples - len(speech)) // 2
    audio[lead: lead + len(speech)] = speech
    return np.clip(audio, -1.0, 1.0).astype(np.float32), n_frames


# --------------------------------------------------------------------------------------------
# Vision: a face moving on a background, with emotion-specific tint, motion and mouth warp
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speaker:
    """One speaker: a face photo and a voice.

    Attributes:
        face: ``"astronaut"`` or ``"lfw:<index>"`` (an image of ``skimage.data.lfw_subset()``).
        skin: RGB gains that colourise a grayscale face (ignored for a colour one).
        size: Face height in pixels at scale 1.
        voice: espeak-ng voice (language + variant).
        pitch_offset: Added to every emotion's pitch.
    """

    face: str
    skin: tuple[float, float, float]
    size: int
    voice: str
    pitch_offset: int


SPEAKERS = {
    "spk01": Speaker("astronaut", (1.0, 1.0, 1.0), 104, "en-us+f3", 6),
    "spk02": Speaker("lfw:1", (1.06, 0.92, 0.80), 100, "en-us+m3", -8),
    "spk03": Speaker("lfw:18", (1.02, 0.88, 0.78), 96, "en+f4", 4),
    "spk04": Speaker("lfw:49", (1.04, 0.93, 0.76), 102, "en-gb+m4", -4),
    "spk05": Speaker("lfw:46", (1.05, 0.90, 0.82), 98, "en-us+f2", 10),
    "spk06": Speaker("lfw:69", (1.00, 0.90, 0.84), 100, "en+m1", -12),
}

# Astronaut crop (rows, cols) framing the face like LFW's 25x25 crops: brows to chin.
ASTRONAUT_CROP = (slice(63, 168), slice(171, 276))
MOUTH_CENTRE = (0.5, 0.76)  # (u, v) of the mouth in a face crop, in face widths/heights
MOUTH_RADII = (0.22, 0.12)


@dataclass(frozen=True)
class VisionStyle:
    """How an emotion shows on the face (each at full expression).

    Attributes:
        tint: Per-channel gains on the face colour.
        motion: Name of a motion pattern (see ``face_pose``).
        mouth_scale: Magnification of the mouth region (x, y).
        mouth_gain: Brightness gain of the mouth region.
        mouth_lift: Upward shift of the mouth, in face heights (a sneer when > 0).
    """

    tint: tuple[float, float, float]
    motion: str
    mouth_scale: tuple[float, float]
    mouth_gain: float
    mouth_lift: float


VISION_STYLES = {
    "neutral": VisionStyle((1.00, 1.00, 1.00), "still", (1.00, 1.00), 1.00, 0.00),
    "happiness": VisionStyle((1.18, 1.06, 0.82), "bounce", (1.35, 1.10), 1.18, 0.00),
    "sadness": VisionStyle((0.72, 0.82, 1.12), "sink", (0.85, 0.85), 0.80, -0.02),
    "anger": VisionStyle((1.30, 0.80, 0.72), "shake", (1.10, 0.75), 0.70, 0.00),
    "surprise": VisionStyle((1.15, 1.15, 1.15), "zoom_in", (0.90, 1.55), 0.60, 0.00),
    "fear": VisionStyle((0.92, 0.90, 1.22), "tremble_retreat", (1.00, 1.30), 0.85, 0.00),
    "disgust": VisionStyle((0.88, 1.22, 0.78), "turn_away", (0.90, 0.85), 0.90, 0.04),
}

MOTION_DESCRIPTIONS = {
    "still": "almost still (slow 2 px sway)",
    "bounce": "bounces up and down (about 1.6 Hz)",
    "sink": "sinks, shrinks and tilts over the clip",
    "shake": "shakes sideways fast (about 5.5 Hz)",
    "zoom_in": "jumps towards the camera (zoom x1.22 in 0.35 s)",
    "tremble_retreat": "trembles (random 2 px jitter) and retreats (zoom x0.86)",
    "turn_away": "slides sideways, narrows and tilts away",
}


@functools.cache
def face_image(speaker: Speaker) -> np.ndarray:
    """The speaker's face as float64 RGB in [0, 1] (square crop)."""
    from skimage import data as skdata

    if speaker.face == "astronaut":
        return skdata.astronaut()[ASTRONAUT_CROP].astype(np.float64) / 255.0
    index = int(speaker.face.split(":", 1)[1])
    gray = skdata.lfw_subset()[index].astype(np.float64)
    return np.clip(gray[:, :, None] * np.asarray(speaker.skin), 0.0, 1.0)


def background(rng: np.random.Generator) -> np.ndarray:
    """A still room-like backdrop: a vertical gradient, a floor band and a soft lamp glow."""
    top, bottom = rng.integers(40, 200, size=(2, 3)) / 255.0
    lamp = rng.integers(150, 256, size=3) / 255.0
    lamp_x, lamp_y = rng.integers(20, FRAME_SIZE - 20, size=2)
    ys, xs = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE].astype(np.float64)
    t = ys / (FRAME_SIZE - 1)
    img = top * (1.0 - t)[..., None] + bottom * t[..., None]
    floor = ys > FRAME_SIZE * 0.8
    img[floor] = img[floor] * 0.7
    d2 = ((xs - lamp_x) * (xs - lamp_x) + (ys - lamp_y) * (ys - lamp_y)) / (40.0 * 40.0)
    glow = np.clip(1.0 - d2, 0.0, 1.0)
    glow = glow * glow * 0.35
    return img * (1.0 - glow[..., None]) + lamp * glow[..., None]


def face_pose(motion: str, t: float, duration: float, amount: float,
              jitter: tuple[int, int]) -> tuple[float, float, float, float, float]:
    """Pose of the face at time ``t``: (dx, dy, scale, tilt in degrees, horizontal squash)."""
    p = t / duration
    onset = min(1.0, t / 0.35)
    dx = dy = tilt = 0.0
    scale = squash = 1.0
    if motion == "still":
        dx = 2.0 * math.sin(2 * math.pi * t / 4.0)
    elif motion == "bounce":
        dy = -9.0 * amount * abs(math.sin(2 * math.pi * 1.6 * t))
    elif motion == "sink":
        dy, scale, tilt = 14.0 * amount * p, 1.0 - 0.08 * p, 7.0 * amount * p
    elif motion == "shake":
        dx = 6.0 * amount * math.sin(2 * math.pi * 5.5 * t)
        tilt = 2.0 * math.sin(2 * math.pi * 5.5 * t + 1.0)
    elif motion == "zoom_in":
        scale, dy = 1.0 + 0.22 * amount * onset, -4.0 * onset
    elif motion == "tremble_retreat":
        dx, dy, scale = float(jitter[0]), float(jitter[1]), 1.0 - 0.14 * amount * p
    elif motion == "turn_away":
        dx, squash, tilt = 16.0 * amount * p, 1.0 - 0.14 * p, -6.0 * amount * p
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return dx, dy, scale, tilt, squash


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Samples ``image`` (H, W, C) at fractional pixel positions, clamping at the edges."""
    h, w = image.shape[:2]
    rows = np.clip(rows, 0.0, h - 1.0)
    cols = np.clip(cols, 0.0, w - 1.0)
    r0 = np.minimum(np.floor(rows).astype(np.int64), h - 2)
    c0 = np.minimum(np.floor(cols).astype(np.int64), w - 2)
    fr = (rows - r0)[..., None]
    fc = (cols - c0)[..., None]
    top = image[r0, c0] * (1.0 - fc) + image[r0, c0 + 1] * fc
    bottom = image[r0 + 1, c0] * (1.0 - fc) + image[r0 + 1, c0 + 1] * fc
    return top * (1.0 - fr) + bottom * fr


def render_frame(face: np.ndarray, backdrop: np.ndarray, speaker: Speaker, style: VisionStyle,
                 pose: tuple[float, float, float, float, float], expression: float,
                 centre: tuple[float, float]) -> np.ndarray:
    """One RGB frame (float64 in [0, 1]) with the face composited onto the backdrop."""
    dx, dy, scale, tilt, squash = pose
    cx, cy = centre[0] + dx, centre[1] + dy
    size = speaker.size * scale
    cos_t, sin_t = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
    # Only the box that can hold the face (half-diagonal of its square) needs computing.
    reach = int(math.ceil(size * 0.71)) + 2
    top, left = max(0, int(cy) - reach), max(0, int(cx) - reach)
    bottom, right = min(FRAME_SIZE, int(cy) + reach + 1), min(FRAME_SIZE, int(cx) + reach + 1)
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float64)
    x, y = xs - cx, ys - cy
    u = 0.5 + (x * cos_t + y * sin_t) / (size * squash)  # face coordinates in [0, 1]
    v = 0.5 + (y * cos_t - x * sin_t) / size

    # Soft-edged rounded square (superellipse |2u-1|^4 + |2v-1|^4 <= 1) where the face shows.
    a2, b2 = (2 * u - 1) * (2 * u - 1), (2 * v - 1) * (2 * v - 1)
    alpha = np.clip((1.0 - (a2 * a2 + b2 * b2)) * 6.0, 0.0, 1.0)

    # Mouth warp: magnify (and lift) a smooth region around the mouth.
    mx, my = MOUTH_CENTRE
    du, dv = (u - mx) / MOUTH_RADII[0], (v - my) / MOUTH_RADII[1]
    w = np.clip(1.0 - (du * du + dv * dv), 0.0, 1.0)
    w = w * w * (3.0 - 2.0 * w) * expression
    sx, sy = style.mouth_scale
    us = mx + (u - mx) * (1.0 - w + w / sx)
    vs = my + (v - my) * (1.0 - w + w / sy) + w * style.mouth_lift

    n = face.shape[0]
    rgb = bilinear(face, vs * n - 0.5, us * n - 0.5)
    gain = 1.0 + (style.mouth_gain - 1.0) * w
    tint = 1.0 + (np.asarray(style.tint) - 1.0) * expression
    rgb = np.clip(rgb * gain[..., None] * tint, 0.0, 1.0)
    alpha = alpha[..., None]
    frame = backdrop.copy()
    frame[top:bottom, left:right] = backdrop[top:bottom, left:right] * (1.0 - alpha) + rgb * alpha
    return frame


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] → yuv420p planes stacked as PyAV expects, BT.601 limited range.

    Integer arithmetic throughout (the coefficients of ITU-R BT.601 scaled by 256).
    """
    px = np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.int32)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    h, w = r.shape

    def pooled(c: np.ndarray) -> np.ndarray:
        c = c.reshape(h // 2, 2, w // 2, 2)
        return (c[:, 0, :, 0] + c[:, 0, :, 1] + c[:, 1, :, 0] + c[:, 1, :, 1] + 2) >> 2

    r2, g2, b2 = pooled(r), pooled(g), pooled(b)
    u = ((-38 * r2 - 74 * g2 + 112 * b2 + 128) >> 8) + 128
    v = ((112 * r2 - 94 * g2 - 18 * b2 + 128) >> 8) + 128
    planes = [y.reshape(-1), u.reshape(-1), v.reshape(-1)]
    return np.concatenate(planes).astype(np.uint8).reshape(h * 3 // 2, w)


def render_video(speaker: Speaker, emotion: str, n_frames: int, backdrop: np.ndarray,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """The frames of one clip as yuv420p arrays."""
    style = VISION_STYLES[emotion]
    face = face_image(speaker)
    amount = 0.85 + 0.3 * float(rng.random())  # per-clip strength of the motion
    centre = (FRAME_SIZE / 2 + float(rng.integers(-10, 11)),
              FRAME_SIZE / 2 + float(rng.integers(-6, 7)))
    jitter = rng.integers(-2, 3, size=(n_frames, 2))
    duration = n_frames / FPS
    frames = []
    for i in range(n_frames):
        t = i / FPS
        pose = face_pose(style.motion, t, duration, amount, (int(jitter[i, 0]),
                                                            int(jitter[i, 1])))
        expression = min(1.0, t / EXPRESSION_ONSET_S)
        rgb = render_frame(face, backdrop, speaker, style, pose, expression, centre)
        frames.append(rgb_to_yuv420p(rgb))
    return frames


# --------------------------------------------------------------------------------------------
# Container: H.264 + AAC in MP4 with PyAV, reproducibly
# --------------------------------------------------------------------------------------------

def disable_ffmpeg_simd() -> bool:
    """Makes the bundled FFmpeg use its plain C routines (``av_force_cpu_flags(0)``).

    FFmpeg picks float DSP routines (FFT/MDCT, dot products) by CPU features at run time, and the
    AVX2/FMA/AVX-512 variants round differently, so otherwise the AAC stream depends on the CPU
    (measured on an AVX-512 machine: 7 of 36 clips changed). Process-wide; the generator is a
    script of its own.
    Returns False where the library cannot be found (wheels other than the manylinux ones).
    """
    import av

    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    candidates = sorted(libs.glob("libavutil*.so*"))
    if not candidates:
        return False
    ctypes.CDLL(str(candidates[0])).av_force_cpu_flags(ctypes.c_int(0))
    return True


def write_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> None:
    """Encodes yuv420p frames (H.264) and mono float audio (AAC) into an MP4 file."""
    import av

    with av.open(str(path), mode="w", format="mp4",
                 container_options={"fflags": "+bitexact"}) as container:
        # asm=0: x264's SIMD code is not bit-exact for its float parts (e.g. macroblock-tree
        # rate control), so with it the bytes depend on the CPU (measured: all 36 clips).
        video = container.add_stream("libx264", rate=FPS, options={
            "crf": str(X264_CRF),
            "preset": "medium",
            "x264-params": "asm=0:threads=1:lookahead-threads=1:sliced-threads=0:"
                           "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m",
        })
        video.width = video.height = FRAME_SIZE
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1
        video.codec_context.time_base = Fraction(1, FPS)
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono",
                                     options={"flags": "+bitexact"})
        sound.bit_rate = AAC_BIT_RATE
        sound.codec_context.time_base = Fraction(1, SAMPLE_RATE)

        for i, planes in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))

        chunk = sound.codec_context.frame_size or 1024
        for start in range(0, len(audio), chunk):
            piece = np.ascontiguousarray(audio[None, start: start + chunk])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts, frame.time_base = start, Fraction(1, SAMPLE_RATE)
            container.mux(sound.encode(frame))
        container.mux(sound.encode(None))


# --------------------------------------------------------------------------------------------
# Annotations: simulated unimodal votes
# --------------------------------------------------------------------------------------------


def simulate_votes(expressed: str, rng: np.random.Generator) -> tuple[str, ...]:
    """Votes of N_ANNOTATORS simulated annotators for a modality expressing ``expressed``.

    Each votes the expressed emotion with probability VOTE_ACCURACY, else one of its
    confusable emotions (the first twice as likely). Vote sets without a strict majority for the
    expressed emotion are redrawn, so the designed deviation is realised exactly.
    """
    first, second = CONFUSABLE[expressed]
    while True:
        votes = []
        for _ in range(N_ANNOTATORS):
            draw = float(rng.random())
            if draw < VOTE_ACCURACY:
                votes.append(expressed)
            else:
                votes.append(first if draw < VOTE_ACCURACY + (1 - VOTE_ACCURACY) * 2 / 3
                             else second)
        if votes.count(expressed) > N_ANNOTATORS // 2:
            return tuple(votes)


# --------------------------------------------------------------------------------------------
# Corpus card
# --------------------------------------------------------------------------------------------


def corpus_card(clips: list[RawClip], deviations: Counter, kappa: dict[str, float | None],
                total_seconds: float, tools: dict[str, str]) -> str:
    labels = Counter(c.label for c in clips)
    vision_rows = "\n".join(
        f"| {e} | {s.tint[0]:.2f} / {s.tint[1]:.2f} / {s.tint[2]:.2f} | "
        f"{MOTION_DESCRIPTIONS[s.motion]} | x{s.mouth_scale[0]:.2f} wide, "
        f"x{s.mouth_scale[1]:.2f} tall, brightness x{s.mouth_gain:.2f}"
        f"{', lifted' if s.mouth_lift > 0 else ', lowered' if s.mouth_lift < 0 else ''} |"
        for e, s in VISION_STYLES.items())
    audio_rows = "\n".join(f"| {e} | {s.pitch} | {s.speed} | {s.amplitude} |"
                           for e, s in AUDIO_STYLES.items())
    speaker_rows = "\n".join(
        f"| {sid} | {sp.face} | {sp.voice} | {sp.pitch_offset:+d} | "
        f"{', '.join(v for v, s in VIDEO_SPEAKER.items() if s == sid)} |"
        for sid, sp in SPEAKERS.items())
    label_line = ", ".join(f"{e} {labels[e]}" for e in DEFAULT_TAXONOMY)
    deviation_line = ", ".join(f"{d}: {deviations[d]}" for d in range(4))
    kappa_line = ", ".join(f"{m} {kappa[m]:.3f}" for m in MODALITIES if kappa[m] is not None)
    n_speakers, n_videos = len(SPEAKERS), len(VIDEO_SPEAKER)
    pad, accuracy = SPEECH_PADDING_S, VOTE_ACCURACY
    return f"""---
license: cc-by-4.0
language:
- en
pretty_name: SDME sample corpus
size_categories:
- n<1K
task_categories:
- video-classification
tags:
- emotion-recognition
- multimodal
- synthetic
---

# SDME sample corpus (v{CORPUS_VERSION})

A tiny multimodal emotion corpus in the SDME raw layout, shipped inside the `sdme` package so
that the whole toolkit (download, build, train, benchmark) runs offline and in tests:
{len(clips)} clips, {total_seconds:.1f} s in all, {n_speakers} speakers, {n_videos} source videos.

**The labels and the unimodal votes are constructed by a script to exercise the pipeline. They
are not human judgements, and no result on this corpus says anything about emotion recognition
by people or about performance on real data.** The media are real (real face photos, real
synthesised speech), but what each modality expresses is decided by a table in the generator.

## How it was made

Everything here is written by `scripts/make_sample_corpus.py` (seed {SEED}), which regenerates
the corpus byte for byte:

    python scripts/make_sample_corpus.py --out DIR

Each clip has a multimodal `label` from the 7-class taxonomy
({", ".join(DEFAULT_TAXONOMY)}) and, per modality, an *expressed* emotion
that is either the label or a deliberately different one. The clip plan (`CLIP_PLAN` in the
script) fixes both.

- **Text.** The transcript is a short English sentence chosen from a small bank of sentences
  per emotion, whose words express the text emotion.
- **Audio.** espeak-ng {tools["espeak-ng"]} speaks the transcript in the speaker's voice with the
  pitch (`-p`), speed (`-s`, words per minute) and amplitude (`-a`) of the audio emotion; the
  speaker's pitch offset is added. Speech is trimmed of silence, resampled to {SAMPLE_RATE} Hz
  mono, centred in the clip and encoded as AAC ({AAC_BIT_RATE // 1000} kbit/s). A clip lasts
  max({MIN_SECONDS:g} s, speech length + {pad:g} s), rounded up to 0.2 s; speech longer than
  {MAX_SECONDS - pad:g} s is re-spoken faster, so no clip exceeds {MAX_SECONDS:g} s.

| audio emotion | pitch | speed | amplitude |
|---|---|---|---|
{audio_rows}

- **Vision.** A real face moves on a still backdrop ({FRAME_SIZE}x{FRAME_SIZE} px, {FPS} fps, H.264
  yuv420p, BT.601). The vision emotion shows through a colour tint of the face, a motion
  pattern and a warp of the mouth region; tint and mouth warp build up over the first
  {EXPRESSION_ONSET_S} s of the clip. Motion strength and face position vary per clip, the
  backdrop per video (seeded).

| vision emotion | face tint (R/G/B gain) | motion | mouth region |
|---|---|---|---|
{vision_rows}

- **Speakers.** Each speaker has one face and one voice throughout, and two source videos
  whose clips are consecutive (`start`/`end` in seconds within the video).

| speaker | face | espeak-ng voice | pitch offset | videos |
|---|---|---|---|---|
{speaker_rows}

## Labels, votes and deviation

`votes_text`, `votes_audio`, `votes_vision` hold the votes of {N_ANNOTATORS} *simulated* annotators
per modality: each votes the modality's expressed emotion with probability {accuracy}, otherwise
an emotion commonly confused with it (e.g. happiness/surprise, anger/disgust, sadness/neutral);
vote sets without a strict majority for the expressed emotion are redrawn, so the majority vote
of each modality is exactly its expressed emotion.

The deviation of a clip (`sdme.relevance`) is then the number of modalities whose expressed
emotion differs from the label. Deviation 0: all three modalities express the label.
Deviation 1-2: one or two modalities express something else (often neutral, i.e. the
modality is irrelevant, sometimes another emotion, i.e. it conflicts). Deviation 3: no modality
expresses the label; the label stands for what the clip's wider context would convey, which the
clip itself does not show. These clips are deliberately unsolvable from the clip alone, as
context-dependent clips are in real corpora.

- Labels: {label_line}.
- Deviation: {deviation_line}.
- Fleiss' kappa of the simulated votes: {kappa_line}.
- The `split` column is empty: `sdme build` assigns speaker-disjoint splits.

## Files

    sdme.json            manifest: taxonomy, annotation protocol, every file with size and sha256
    annotations.csv      one row per clip
    clips/<clip_id>.mp4  H.264 video + AAC audio
    README.md            this card

## Licence and sources

The constructed material (plan, transcripts, votes, synthesis and composition) is released under
CC-BY-4.0. The faces are third-party photos redistributed by scikit-image:

- `skimage.data.astronaut()`: NASA portrait of astronaut Eileen Collins, public domain
  (https://www.nasa.gov/multimedia/guidelines/index.html).
- `skimage.data.lfw_subset()` images {", ".join(s.face.split(":")[1] for s in SPEAKERS.values()
                                      if s.face.startswith("lfw:"))}: Labeled Faces in the Wild
  (G. B. Huang, M. Ramesh, T. Berg, E. Learned-Miller, "Labeled Faces in the Wild: A Database for
  Studying Face Recognition in Unconstrained Environments", UMass Amherst TR 07-49, 2007;
  http://vis-www.cs.umass.edu/lfw/). Photos of public figures collected from news sites; their
  rights stay with their holders, and their use follows LFW's research terms.

Speech was synthesised with espeak-ng (GPL-3.0; the generated audio is not covered by the GPL).

## Reproducing it

Requires Debian's `espeak-ng` ({tools["espeak-ng"]}), `av=={tools["av"]}` (bundles FFmpeg and x264)
and scikit-image. Randomness is seeded; pixels and samples use element-wise arithmetic
only; x264 runs single-threaded; the MP4 and AAC writers run in bitexact mode; x264 and FFmpeg
run their plain C code rather than CPU-specific SIMD variants. Other versions of espeak-ng or
PyAV give different bytes.
"""


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def check_plan() -> None:
    """Fails early on a plan that misses an emotion, speaker or video."""
    known = set(DEFAULT_TAXONOMY)
    for row in CLIP_PLAN:
        video, *emotions = row
        if video not in VIDEO_SPEAKER:
            raise ValueError(f"CLIP_PLAN row {row}: unknown video {video!r}")
        unknown = [e for e in emotions if e not in known]
        if unknown:
            raise ValueError(f"CLIP_PLAN row {row}: unknown emotion(s) {unknown}")
    if set(VIDEO_SPEAKER.values()) != set(SPEAKERS):
        raise ValueError("VIDEO_SPEAKER and SPEAKERS name different speakers")


def render_clips(clips_dir: Path, workdir: Path) -> list[RawClip]:
    """Renders every clip of CLIP_PLAN into ``clips_dir`` and returns the annotation rows."""
    clips: list[RawClip] = []
    sentence_uses: Counter = Counter()
    frames_so_far: Counter = Counter()  # per video: where the next clip starts
    clips_so_far: Counter = Counter()
    backdrops: dict[str, np.ndarray] = {}
    for index, (video_id, label, text_emo, audio_emo, vision_emo) in enumerate(CLIP_PLAN):
        speaker_id = VIDEO_SPEAKER[video_id]
        speaker = SPEAKERS[speaker_id]
        if video_id not in backdrops:
            backdrops[video_id] = background(np.random.default_rng([SEED, 1, int(video_id[3:])]))
        text = pick_transcript(text_emo, sentence_uses[text_emo])
        sentence_uses[text_emo] += 1
        audio, n_frames = render_audio(text, speaker, audio_emo, workdir)
        frames = render_video(speaker, vision_emo, n_frames, backdrops[video_id],
                              np.random.default_rng([SEED, 2, index]))
        clip_id = f"{video_id}_{clips_so_far[video_id]:02d}"
        clips_so_far[video_id] += 1
        write_mp4(clips_dir / f"{clip_id}.mp4", frames, audio)
        start = frames_so_far[video_id] / FPS
        frames_so_far[video_id] += n_frames
        vote_rng = np.random.default_rng([SEED, 3, index])
        clips.append(RawClip(
            clip_id=clip_id, video_id=video_id, speaker_id=speaker_id,
            start=start, end=frames_so_far[video_id] / FPS, text=text, language="en",
            label=label,
            votes_text=simulate_votes(text_emo, vote_rng),
            votes_audio=simulate_votes(audio_emo, vote_rng),
            votes_vision=simulate_votes(vision_emo, vote_rng),
        ))
    return clips


def check_deviations(clips: list[RawClip]) -> Counter:
    """Checks with sdme.relevance that every clip deviates as planned; returns the distribution."""
    deviations: Counter = Counter()
    for clip, (_, label, *expressed) in zip(clips, CLIP_PLAN, strict=True):
        intended = tuple(m for m, e in zip(MODALITIES, expressed, strict=True) if e != label)
        got = compute_relevance(clip, DEFAULT_TAXONOMY)
        if got.deviating() != intended:
            raise RuntimeError(f"{clip.clip_id}: votes give deviating modalities "
                               f"{got.deviating()}, the plan says {intended}")
        deviations[got.deviation] += 1
    return deviations


def make_manifest(root: Path, tools: dict[str, str], plain_c: bool) -> CorpusManifest:
    """The corpus manifest, listing every file already written under ``root``."""
    return CorpusManifest(
        name=CORPUS_NAME,
        version=CORPUS_VERSION,
        license=LICENSE,
        taxonomy=DEFAULT_TAXONOMY,
        annotation_protocol={
            "constructed": True,
            "annotators_per_modality": N_ANNOTATORS,
            "description": (
                "Labels and votes are constructed for exercising the pipeline, not human "
                "judgements. Each clip's label and the emotion each modality expresses come "
                "from a fixed plan; votes_<m> are 5 simulated annotators per modality who "
                f"vote the expressed emotion with probability {VOTE_ACCURACY}, else a "
                "confusable emotion (vote sets without a strict majority for the expressed "
                "emotion are redrawn). See README.md."),
            "vote_accuracy": VOTE_ACCURACY,
            "confusable": {k: list(v) for k, v in CONFUSABLE.items()},
        },
        files=make_manifest_files(root),
        description=(
            "Tiny constructed multimodal emotion corpus bundled with SDME: real face photos "
            "(scikit-image's astronaut and LFW subset) moving with emotion-specific tint, "
            "motion and mouth warp; espeak-ng speech with emotion-specific prosody; "
            "emotional English transcripts; simulated unimodal votes."),
        citation=(
            "Faces: skimage.data.astronaut (NASA, public domain); Huang et al., Labeled "
            "Faces in the Wild, UMass Amherst TR 07-49, 2007."),
        extra={
            "generator": "scripts/make_sample_corpus.py",
            "seed": SEED,
            "tools": tools,
            "ffmpeg_simd_disabled": plain_c,
            "license_notes": "Constructed data CC-BY-4.0; astronaut photo public domain "
                             "(NASA); LFW images under LFW's terms. See README.md.",
        },
    )


def generate(out: Path) -> dict[str, object]:
    """Writes the corpus into ``out`` (replacing it whole) and returns summary figures."""
    import av

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found: install Debian's espeak-ng (apt-get install "
                         "espeak-ng) to regenerate the sample corpus")
    check_plan()
    plain_c = disable_ffmpeg_simd()
    tools = {"av": av.__version__, "espeak-ng": espeak_version()}
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        staging.chmod(0o755)
        (staging / CLIPS_DIR).mkdir()
        with tempfile.TemporaryDirectory(prefix="sdme-sample-") as workdir:
            clips = render_clips(staging / CLIPS_DIR, Path(workdir))
        deviations = check_deviations(clips)
        kappa = agreement_by_modality(clips, DEFAULT_TAXONOMY)
        total_seconds = sum(c.duration for c in clips)
        write_annotations(staging / ANNOTATIONS_NAME, clips)
        (staging / "README.md").write_text(
            corpus_card(clips, deviations, kappa, total_seconds, tools), encoding="utf-8")
        manifest = make_manifest(staging, tools, plain_c)
        (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
        swap_in_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"clips": len(clips), "seconds": total_seconds, "bytes": size,
            "deviations": dict(sorted(deviations.items())), "kappa": kappa,
            "labels": dict(Counter(c.label for c in clips)), "ffmpeg_simd_disabled": plain_c}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder, replaced whole (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    summary = generate(args.out)
    elapsed = time.perf_counter() - began
    kappa = ", ".join(f"{m}={k:.3f}" for m, k in summary["kappa"].items() if k is not None)
    print(f"wrote {summary['clips']} clips ({summary['seconds']:.1f} s, "
          f"{summary['bytes'] / 1e6:.2f} MB) to {args.out} in {elapsed:.1f} s")
    print(f"labels: {summary['labels']}")
    print(f"deviation distribution: {summary['deviations']}")
    print(f"Fleiss' kappa: {kappa}")
    if not summary["ffmpeg_simd_disabled"]:
        print("note: could not disable FFmpeg's SIMD code; AAC bytes may differ on other CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
