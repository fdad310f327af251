"""``stylekit eval`` and :mod:`training.evaluate`: the scores on cases whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sdk
from sdk.cli import main as stylekit_main
from sdk.errors import BadOptionError
from training import evaluate as ev


@pytest.fixture(scope="module")
def painting(style_images: list[Path]) -> Path:
    return next(p for p in style_images if "starry" in p.name)


def test_an_output_equal_to_the_photo_gains_no_style(content_images: list[Path], painting: Path) -> None:
    s = ev.score(content_images[0], content_images[0], painting)
    assert s.style_similarity == 0.0 and s.style_gain == 0.0
    assert s.edges_kept == 1.0 and s.content_distance == 0.0
    assert s.colour_distance > 0.02  # a photo's palette is not the painting's


def test_the_painting_itself_scores_top_style(content_images: list[Path], painting: Path) -> None:
    itself = ev.score(content_images[0], painting, painting)
    assert itself.style_similarity == pytest.approx(1.0, abs=1e-5)
    assert itself.style_gain == pytest.approx(1.0) and itself.colour_distance == pytest.approx(0.0, abs=1e-6)
    # A real stylization lies between the photo and the painting on every style score.
    styled = sdk.stylize(content_images[0], "starry-night", max_side=ev.WORK_SIDE)
    s = ev.score(content_images[0], np.asarray(styled), painting)
    assert 0.3 < s.style_similarity < itself.style_similarity
    assert 0.2 < s.style_gain < 1.0
    photo = ev.score(content_images[0], content_images[0], painting)
    assert s.colour_distance < photo.colour_distance
    # ...and keeps more of the photo's edges than the painting does.
    assert itself.edges_kept < s.edges_kept < 1.0 and 0 < s.content_distance < itself.content_distance


def test_edges_and_colour_measures() -> None:
    flat = np.full((32, 48, 3), 128, np.uint8)
    assert ev.edges_kept(flat, flat) == 1.0  # nothing to lose
    bars = flat.copy()
    bars[:, ::8] = 255
    assert ev.edges_kept(bars, bars) == 1.0 and ev.edges_kept(bars, flat) == 0.0
    assert ev.colour_distance(bars, bars) == 0.0
    black, white = np.zeros_like(flat), np.full_like(flat, 255)
    assert ev.colour_distance(black, white) == pytest.approx(1 / 3, abs=0.01)  # L from 0 to 100
    lab = ev.srgb_to_lab(np.array([[[255, 255, 255], [255, 0, 0]]], np.uint8))
    np.testing.assert_allclose(lab[0, 0], [100, 0, 0], atol=0.05)
    np.testing.assert_allclose(lab[0, 1], [53.24, 80.09, 67.20], atol=0.05)


def test_evaluate_refuses_unpaired_input(content_images: list[Path], painting: Path) -> None:
    with pytest.raises(BadOptionError, match="one output per photo"):
        ev.evaluate(content_images[:2], content_images[:1], painting)
    with pytest.raises(BadOptionError, match="no photos"):
        ev.evaluate([], [], painting)


def test_eval_command(tmp_path: Path, content_images: list[Path], painting: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    photos = tmp_path / "photos"
    outputs = tmp_path / "out"
    photos.mkdir()
    outputs.mkdir()
    for p in content_images[:2]:
        (photos / p.name).symlink_to(p)
        Image.open(p).convert("RGB").save(outputs / f"{p.stem}-copy.png")  # the photo as its "output"
    args = ["eval", "--painting", str(painting), "--photos", str(photos), "--outputs", str(outputs), "--json"]
    assert stylekit_main([*args, "--sheet", str(tmp_path / "sheet.jpg")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["image"] for row in report["images"]] == sorted(p.name for p in content_images[:2])
    assert report["mean"]["style_gain"] == pytest.approx(0.0, abs=0.02)  # PNG of a JPEG: nearly the photo
    assert report["mean"]["edges_kept"] > 0.95
    assert Image.open(tmp_path / "sheet.jpg").size[0] > 0

    assert (
        stylekit_main(
            ["eval", "--painting", str(painting), "--photos", str(photos), "--style", "starry-night"]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["image", "style_similarity", "style_gain"] and lines[-1].startswith(
        "mean"
    )

    (outputs / f"{content_images[0].stem}.png").write_bytes(b"")  # two candidates for one photo
    assert stylekit_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylekit: error: 2 outputs") and "\n" not in err


def test_eval_of_a_video(tmp_path: Path, photos: list[Path], painting: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from test_video import pan_frames, write_clip

    frames = pan_frames(photos[0], 8, 96, 64)
    clip = write_clip(tmp_path / "clip.mp4", frames)
    base = ["eval", "--painting", str(painting), "--video", str(clip), "--json"]
    assert stylekit_main([*base, "--style", "starry-night"]) == 0
    styled = json.loads(capsys.readouterr().out)
    assert len(styled["images"]) == 5 and styled["images"][0]["image"] == "frame 0"
    assert styled["mean"]["style_gain"] > 0.2
    assert styled["warping_error"] > 0 and styled["input_warping_error"] > 0

    # The clip as its own "stylization": no style gained, the input's own flicker.
    assert stylekit_main([*base, "--outputs", str(clip)]) == 0
    itself = json.loads(capsys.readouterr().out)
    assert itself["mean"]["style_gain"] == 0.0 and itself["mean"]["edges_kept"] == 1.0
    assert itself["warping_error"] == pytest.approx(itself["input_warping_error"])

    shorter = write_clip(tmp_path / "short.mp4", frames[:5])
    assert stylekit_main([*base, "--outputs", str(shorter)]) == 2
    assert "differ in frame count" in capsys.readouterr().err
