"""How good is a style? Scores for stylized images against their photos and the painting.

Every score compares pictures brought to the same working size (longest side
:data:`WORK_SIDE`), so a score does not depend on the resolution a style ran at.

Style (how close the output is to the painting):

- ``style_similarity``: in the style embedding of the predictor shipped in the built-in
  ``arbitrary`` package (a network trained to summarise paintings), the cosine between the
  step from the photo to the output and the step from the photo to the painting. An output
  equal to the photo scores 0, the painting itself 1, a move away from it below 0.
- ``style_gain``: how far the loss network's Gram statistics moved from the photo's toward the
  painting's: ``1 - D(output, painting) / D(photo, painting)``, with ``D`` the mean relative
  Frobenius distance of the MobileNet Grams (the offline loss network's style taps). An output
  equal to the photo scores 0, the painting 1; it can go below 0 (further away than the photo).
- ``colour_distance``: distance of the output's colours to the painting's in CIELAB: the mean
  over L, a and b of the 1-D Wasserstein distance between their distributions, with L scaled by
  100 and a, b by 255 (0 = the same palette; lower is closer).

Content (how much of the photo survives):

- ``edges_kept``: the share of the photo's edge pixels (its strongest 10% of Sobel gradient)
  that are also among the output's strongest 10%. The photo itself scores 1; an unrelated
  picture about 0.1.
- ``content_distance``: the relative distance of the loss network's content features
  (MobileNet ``block5``) of the output from the photo's (0 = the photo's content).

:func:`evaluate` scores given pictures; :func:`evaluate_style` stylizes photos with a style
first. ``stylekit eval`` (``training.commands.eval``) prints them as a table or JSON and can
write a contact sheet.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from sdk import imaging
from sdk.errors import BadOptionError

if TYPE_CHECKING:
    from sdk.api import StyleArg
    from sdk.imaging import ImageInput

#: Longest side every picture is brought to before it is scored.
WORK_SIDE = 384
# The share of pixels that count as edges, in the photo and in the output alike.
_EDGE_SHARE = 0.10
# CIELAB channel ranges: L in [0, 100], a and b in about [-128, 127].
_LAB_SCALE = (100.0, 255.0, 255.0)


@dataclass(frozen=True)
class Scores:
    """The scores of one stylized picture (see the module's docstring for each)."""

    style_similarity: float
    style_gain: float
    colour_distance: float
    edges_kept: float
    content_distance: float

    @property
    def quality(self) -> float:
        """One number to rank checkpoints by: the mean of the similarity, gain and edges kept,
        less the colour distance (higher is better)."""
        return (self.style_similarity + self.style_gain + self.edges_kept) / 3 - self.colour_distance

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Scores))

    @staticmethod
    def mean(rows: Sequence[Scores]) -> Scores:
        if not rows:
            raise BadOptionError("Nothing to score: no pictures were given.")
        return Scores(**{name: float(np.mean([getattr(r, name) for r in rows])) for name in Scores.names()})


@dataclass(frozen=True)
class Evaluation:
    """Per-picture scores (``rows``, named by ``labels``) and their mean."""

    labels: tuple[str, ...]
    rows: tuple[Scores, ...]
    painting: str

    @property
    def mean(self) -> Scores:
        return Scores.mean(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "painting": self.painting,
            "mean": asdict(self.mean),
            "images": [
                {"image": label, **asdict(row)} for label, row in zip(self.labels, self.rows, strict=True)
            ],
        }


# ---------------------------------------------------------------------------------------------
# the judges


class _Judges:
    """The networks the scores use, loaded once per process (CPU, float32, frozen)."""

    def __init__(self) -> None:
        from sdk import api
        from sdk.registry import default_registry
        from training.perceptual_mobilenet import MobileNetPerceptual

        net = MobileNetPerceptual()
        net.freeze()
        self.features = net
        self.content_layers = net.default_content_layers
        self.style_layers = net.default_style_layers
        resolved = default_registry().resolve("arbitrary")
        self.predictor: Any = api.engine("cpu", "torchscript").load(resolved.package)

    def embedding(self, rgb: np.ndarray) -> torch.Tensor:
        vector: torch.Tensor = self.predictor.style_vector(imaging.decode(rgb)).flatten().float()
        return vector

    def grams_and_content(self, rgb: np.ndarray) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        from training.losses import gram_matrix

        feats = self.features(imaging.to_tensor(rgb))
        return [gram_matrix(feats[k])[0] for k in self.style_layers], [
            feats[k][0] for k in self.content_layers
        ]


@lru_cache(maxsize=1)
def _judges() -> _Judges:
    return _Judges()


def work_picture(img: ImageInput) -> np.ndarray:
    """``img`` as the scores see it: RGB uint8, longest side at most :data:`WORK_SIDE`."""
    decoded = imaging.resize_max_side(imaging.decode(img), WORK_SIDE)
    return np.ascontiguousarray(decoded.rgb)


def _like(rgb: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``rgb`` at ``shape``'s size (an output a style returned at another size than its photo)."""
    if rgb.shape == shape:
        return rgb
    im = Image.fromarray(rgb, "RGB").resize((shape[1], shape[0]), Image.Resampling.BICUBIC)
    return np.asarray(im)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 sRGB -> HxWx3 float32 CIELAB (D65)."""
    c = rgb.astype(np.float32) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)  # fmt: skip
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)
    return lab.astype(np.float32)


def colour_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over L, a, b of the 1-D Wasserstein distance of two pictures' colours (scaled to 0..1)."""
    la, lb = srgb_to_lab(a).reshape(-1, 3), srgb_to_lab(b).reshape(-1, 3)
    qs = np.linspace(0.0, 1.0, 257)
    total = 0.0
    for ch, scale in enumerate(_LAB_SCALE):
        # Quantiles: both distributions on the same 257 points, whatever their pixel counts.
        total += float(np.mean(np.abs(np.quantile(la[:, ch], qs) - np.quantile(lb[:, ch], qs)))) / scale
    return total / 3


def _gradient(rgb: np.ndarray) -> torch.Tensor:
    """Sobel gradient magnitude of the mean of the channels: [H, W] float32."""
    grey = torch.from_numpy(rgb.astype(np.float32).mean(axis=2))[None, None]
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([kx, kx.T])[:, None]
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    return g.pow(2).sum(1)[0].sqrt()


def _edge_map(rgb: np.ndarray) -> np.ndarray:
    magnitude = _gradient(rgb).numpy()
    threshold = np.quantile(magnitude, 1.0 - _EDGE_SHARE)
    # >=: where over a tenth of the picture is edge, the quantile is the top value itself.
    edges: np.ndarray = (magnitude >= threshold) & (magnitude > 1e-6)
    return edges


def edges_kept(photo: np.ndarray, output: np.ndarray) -> float:
    """The share of the photo's edge pixels that are edges of the output too (1: all kept)."""
    mine = _edge_map(photo)
    if not mine.any():
        return 1.0  # a flat photo has no edges to lose
    return float((mine & _edge_map(output)).sum() / mine.sum())


# --------------------------------------------------------------------------- stroke size (scale=)
# These two compare pictures at their own (full) size, not at WORK_SIDE: they are about detail.


def edge_ssim(photo: np.ndarray, output: np.ndarray) -> float:
    """SSIM (Gaussian window, sigma 1.5) between the Sobel gradient magnitudes of ``photo`` and
    ``output`` (same size): how well the output keeps the photo's edges where they are. 1: the
    same edges; an output that blurs them, or draws its own elsewhere, scores lower."""
    if photo.shape != output.shape:
        raise BadOptionError(f"edge_ssim compares pictures of one size, not {photo.shape}, {output.shape}.")
    a, b = _gradient(photo)[None, None], _gradient(output)[None, None]
    radius = 5
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * 1.5**2))
    g = (g / g.sum())[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(F.pad(t, (radius, radius, 0, 0), mode="replicate"), g[..., None, :])
        return F.conv2d(F.pad(t, (0, 0, radius, radius), mode="replicate"), g[..., :, None])

    top = float(torch.maximum(a.max(), b.max()).clamp_min(1e-6))
    c1, c2 = (0.01 * top) ** 2, (0.03 * top) ** 2
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    ssim = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(ssim.mean())


def power_spectrum(rgb: np.ndarray, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The radially averaged power spectrum of a picture's luminance (mean removed, Hann window):
    ``(frequencies in cycles per pixel, from 0 to 0.5; mean power in each ring)``."""
    y = np.asarray(Image.fromarray(rgb, "RGB").convert("L"), dtype=np.float64)
    y = y - y.mean()
    h, w = y.shape
    power = np.abs(np.fft.fft2(y * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
    edges = np.linspace(0.0, 0.5, bins + 1)
    ring = np.digitize(radius.ravel(), edges) - 1
    inside = ring < bins  # the corners beyond 0.5 cycles/pixel are left out
    total = np.bincount(ring[inside], power.ravel()[inside], bins)
    count = np.bincount(ring[inside], minlength=bins)
    return (edges[1:] + edges[:-1]) / 2, total / np.maximum(count, 1)


def stroke_frequency(output: np.ndarray, photo: np.ndarray) -> float:
    """The frequency (cycles per pixel) where the output's power spectrum rises most above the
    photo's: the style's own texture, its brush strokes. Any photo's spectrum falls off as
    about 1/f^2, so the output's raw spectrum peaks at the lowest frequency whatever the
    strokes; divided by the photo's, the peak is the strokes' scale. Larger strokes: lower."""
    freqs, mine = power_spectrum(output)
    _, theirs = power_spectrum(photo)
    ratio = mine[1:] / np.maximum(theirs[1:], 1e-12)  # the first ring holds the mean's leakage
    return float(freqs[1:][int(np.argmax(ratio))])


def _relative(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> float:
    return float(
        np.mean([float((x - y).norm() / y.norm().clamp_min(1e-12)) for x, y in zip(a, b, strict=True)])
    )


def score(photo: ImageInput, output: ImageInput, painting: ImageInput) -> Scores:
    """The scores of one stylized picture ``output`` of ``photo`` against ``painting``."""
    return _score(work_picture(photo), work_picture(output), _Painting.of(work_picture(painting)))


@dataclass(frozen=True)
class _Painting:
    rgb: np.ndarray
    embedding: torch.Tensor
    grams: list[torch.Tensor]

    @staticmethod
    def of(rgb: np.ndarray) -> _Painting:
        judges = _judges()
        with torch.no_grad():
            return _Painting(rgb, judges.embedding(rgb), judges.grams_and_content(rgb)[0])


def _score(photo: np.ndarray, output: np.ndarray, painting: _Painting) -> Scores:
    judges = _judges()
    # Style is judged on the output as it is; content against the photo, at the photo's size.
    aligned = _like(output, photo.shape)
    with torch.no_grad():
        out_grams, out_content = judges.grams_and_content(output)
        if aligned is not output:
            out_content = judges.grams_and_content(aligned)[1]
        photo_grams, photo_content = judges.grams_and_content(photo)
        photo_embedding = judges.embedding(photo)
        moved = judges.embedding(output) - photo_embedding
        wanted = painting.embedding - photo_embedding
    # The direction the output moved from the photo, against the one toward the painting: raw
    # embeddings of any two pictures are close (cosine 0.85-0.99 measured), their moves are not.
    similarity = float(F.cosine_similarity(moved, wanted, dim=0)) if float(moved.norm()) > 1e-6 else 0.0
    similarity = min(similarity, 1.0)  # rounding: the painting itself can come out at 1 + 1e-7
    photo_far = _relative(photo_grams, painting.grams)
    gain = 1.0 - _relative(out_grams, painting.grams) / photo_far if photo_far > 0 else 0.0
    return Scores(
        style_similarity=similarity,
        style_gain=gain,
        colour_distance=colour_distance(output, painting.rgb),
        edges_kept=edges_kept(photo, aligned),
        content_distance=_relative(out_content, photo_content),
    )


def evaluate(photos: Sequence[ImageInput], outputs: Sequence[ImageInput], painting: ImageInput,
             labels: Sequence[str] | None = None) -> Evaluation:  # fmt: skip
    """Score each ``outputs[i]`` (a stylized ``photos[i]``) against ``painting``."""
    if len(photos) != len(outputs):
        raise BadOptionError(
            f"{len(outputs)} output(s) for {len(photos)} photo(s): give one output per photo."
        )
    if not photos:
        raise BadOptionError("Nothing to score: no photos were given.")
    target = _Painting.of(work_picture(painting))
    pairs = zip(photos, outputs, strict=True)
    rows = tuple(_score(work_picture(p), work_picture(o), target) for p, o in pairs)
    names = tuple(labels) if labels is not None else tuple(f"image {i + 1}" for i in range(len(rows)))
    return Evaluation(labels=names, rows=rows, painting=_label(painting))


def evaluate_style(style: StyleArg, photos: Sequence[ImageInput], painting: ImageInput, *,
                   style_image: ImageInput | None = None, device: str = "auto",
                   labels: Sequence[str] | None = None) -> tuple[Evaluation, list[Image.Image]]:  # fmt: skip
    """Stylize ``photos`` with ``style`` (at :data:`WORK_SIDE`), then :func:`evaluate` them.

    Returns the evaluation and the stylized pictures (for a contact sheet). For the
    ``arbitrary`` style, ``style_image`` is its painting (default: ``painting``).
    """
    from sdk import api
    from sdk.info import StyleInfo
    from sdk.registry import default_registry

    resolved = default_registry().resolve(style.name if isinstance(style, StyleInfo) else style)
    if style_image is None and resolved.kind == "arbitrary":
        style_image = painting
    work = [work_picture(p) for p in photos]
    outputs = [api.stylize(p, resolved, style_image=style_image, device=device) for p in work]
    return evaluate(work, [np.asarray(o.convert("RGB")) for o in outputs], painting, labels), outputs


@dataclass(frozen=True)
class VideoEvaluation:
    """A stylized clip's scores: ``frames`` (evenly spaced frames, as for pictures) and how much
    it flickers along its motion (:func:`sdk.video.warping_error`, on 0..255), next to the
    input clip's own figure (the floor of noise and resampling)."""

    frames: Evaluation
    warping_error: float
    input_warping_error: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.frames.to_dict(), "warping_error": self.warping_error,
                "input_warping_error": self.input_warping_error}  # fmt: skip


def _video_frames(path: Path, limit: int) -> Iterator[np.ndarray]:
    import av

    from sdk.errors import InvalidVideoError

    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= limit:
                    return
                yield work_picture(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as exc:
        raise InvalidVideoError(f"Video '{path.name}' cannot be read: {exc}") from None


def evaluate_video(clip: str | os.PathLike[str], stylized: str | os.PathLike[str], painting: ImageInput,
                   *, samples: int = 5, max_frames: int = 900) -> VideoEvaluation:  # fmt: skip
    """Score the stylized clip ``stylized`` of ``clip`` against ``painting`` (the ``video`` extra).

    Both are decoded frame by frame at the scores' working size (never a whole clip in memory),
    up to ``max_frames``; ``samples`` evenly spaced frames get the picture scores.
    """
    from sdk import extras
    from sdk.video import warping_error

    extras.require("video", "stylekit eval --video")
    src, out = Path(clip), Path(stylized)
    # Each clip is decoded a few times (count, samples, flicker) rather than held in memory.
    count = sum(1 for _ in _video_frames(src, max_frames))
    if count != sum(1 for _ in _video_frames(out, max_frames)):
        raise BadOptionError(f"{out.name} and {src.name} differ in frame count: not a stylization of it.")
    if count == 0:
        raise BadOptionError(f"{src.name} has no frames to score.")
    picks = sorted({round(i * (count - 1) / max(1, samples - 1)) for i in range(min(samples, count))})
    photos = [f for i, f in enumerate(_video_frames(src, max_frames)) if i in picks]
    outputs = [f for i, f in enumerate(_video_frames(out, max_frames)) if i in picks]
    frames = evaluate(photos, outputs, painting, [f"frame {i}" for i in picks])
    return VideoEvaluation(
        frames=frames,
        warping_error=warping_error(_video_frames(src, max_frames), _video_frames(out, max_frames)),
        input_warping_error=warping_error(_video_frames(src, max_frames), _video_frames(src, max_frames)),
    )


def _label(src: ImageInput) -> str:
    return Path(src).name if isinstance(src, (str, Path)) else type(src).__name__


# ---------------------------------------------------------------------------------------------
# output


def table(evaluation: Evaluation) -> str:
    """A plain-text table: one row per picture, then the mean."""
    names = Scores.names()
    width = max(8, *(len(label) for label in evaluation.labels))
    head = f"{'image':<{width}}  " + "  ".join(f"{n:>16}" for n in names)
    lines = [head]
    for label, row in (*zip(evaluation.labels, evaluation.rows, strict=True), ("mean", evaluation.mean)):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{getattr(row, n):>16.3f}" for n in names))
    return "\n".join(lines)


def contact_sheet(photos: Sequence[ImageInput], outputs: Sequence[ImageInput], painting: ImageInput,
                  evaluation: Evaluation, *, cell: int = 192) -> Image.Image:  # fmt: skip
    """The painting, then one row per picture: photo, output and its scores."""
    rows = len(evaluation.rows)
    sheet = Image.new("RGB", (3 * cell, (rows + 1) * (cell + 28)), "white")
    draw = ImageDraw.Draw(sheet)

    def put(img: ImageInput, col: int, row: int) -> None:
        im = Image.fromarray(work_picture(img), "RGB")
        im.thumbnail((cell, cell))
        sheet.paste(im, (col * cell + (cell - im.width) // 2, row * (cell + 28)))

    put(painting, 0, 0)
    draw.text((cell + 8, 8), f"painting: {evaluation.painting}", fill="black")
    m = evaluation.mean
    draw.text((cell + 8, 28), f"mean style {m.style_similarity:.2f}, gain {m.style_gain:.2f}", fill="black")
    draw.text((cell + 8, 48), f"colour {m.colour_distance:.3f}, edges {m.edges_kept:.2f}", fill="black")
    for i, (p, o, s) in enumerate(zip(photos, outputs, evaluation.rows, strict=True), start=1):
        put(p, 0, i)
        put(o, 1, i)
        y = i * (cell + 28)
        draw.text((2 * cell + 8, y + 8), evaluation.labels[i - 1][:28], fill="black")
        for j, name in enumerate(Scores.names()):
            value = getattr(s, name)
            text = f"{name}: {value:.3f}" if math.isfinite(value) else f"{name}: -"
            draw.text((2 * cell + 8, y + 28 + 18 * j), text, fill="black")
    return sheet


__all__ = [
    "WORK_SIDE",
    "Evaluation",
    "Scores",
    "VideoEvaluation",
    "colour_distance",
    "contact_sheet",
    "edges_kept",
    "evaluate",
    "evaluate_style",
    "evaluate_video",
    "score",
    "srgb_to_lab",
    "table",
    "work_picture",
]
