"""load_image: Pillow modes (L, RGB, RGBA, P, I;16, F), resize and centre crop, non-image files.

The expected pixels are computed independently with NumPy from the arrays the files were made of.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support import assert_close

import minicnn as mc
from minicnn.errors import MinicnnError


@pytest.fixture(scope="module")
def gray():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60)).astype(np.uint8)


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (40, 60, 3)).astype(np.uint8)


def write(tmp_path, name, img):
    path = tmp_path / name
    img.save(path)
    return path


def test_rgb_exact(tmp_path, rgb):
    path = write(tmp_path, "rgb.png", Image.fromarray(rgb))
    out = mc.load_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    np.testing.assert_array_equal(out, rgb)
    # ITU-R 601 luma, what Pillow's "L" conversion computes, within rounding
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert_close(mc.load_image(path, mode="L")[..., 0], luma, 0, "luma", atol=1.0)


def test_gray_to_rgb_and_l(tmp_path, gray):
    path = write(tmp_path, "l.png", Image.fromarray(gray))
    np.testing.assert_array_equal(mc.load_image(path), np.repeat(gray[..., None], 3, axis=2))
    out = mc.load_image(path, mode="L")
    assert out.shape == (40, 60, 1)
    np.testing.assert_array_equal(out[..., 0], gray)


def test_rgba_composited_over_white(tmp_path, rgb):
    alpha = np.random.default_rng(2).integers(0, 256, (40, 60)).astype(np.uint8)
    path = write(tmp_path, "rgba.png", Image.fromarray(np.dstack([rgb, alpha])))
    a = alpha[..., None] / 255.0
    expected = rgb * a + 255.0 * (1 - a)
    assert_close(mc.load_image(path), expected, 0, "over white", atol=1.0)


def test_palette(tmp_path, gray):
    path = write(tmp_path, "p.png", Image.fromarray(gray).convert("P"))
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(mc.load_image(path)[..., 1], gray)


def test_16_bit_scaled_not_clipped(tmp_path, gray):
    """A 16-bit image v * 257 must come back as v (Pillow's own conversion would clip at 255)."""
    path = write(tmp_path, "i16.png", Image.fromarray(gray.astype(np.uint16) * 257))
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(mc.load_image(path, mode="L")[..., 0], gray)


def test_float_tiff(tmp_path, gray):
    path = write(tmp_path, "f.tif", Image.fromarray(gray.astype(np.float32) / 255.0))
    assert Image.open(path).mode == "F"
    np.testing.assert_array_equal(mc.load_image(path, mode="L")[..., 0], gray)


def test_centre_crop_without_resize(tmp_path, rgb):
    path = write(tmp_path, "rgb.png", Image.fromarray(rgb))
    np.testing.assert_array_equal(mc.load_image(path, size=40), rgb[:, 10:50])
    np.testing.assert_array_equal(mc.load_image(path, size=(40, 20)), rgb[:, 20:40])


def test_shorter_side_resize_then_crop(tmp_path):
    """A smooth image halved: the 20x20 crop must equal 2x2 block means of the central 40x40."""
    yy, xx = np.mgrid[0:40, 0:80]
    img = np.stack([yy * 3, xx * 2, (yy + xx)], axis=-1).astype(np.uint8)
    path = write(tmp_path, "ramp.png", Image.fromarray(img))
    out = mc.load_image(path, size=20)
    assert out.shape == (20, 20, 3)
    centre = img[:, 20:60].astype(float).reshape(20, 2, 20, 2, 3).mean(axis=(1, 3))
    assert_close(out, centre, 0, "2x2 block means", atol=2.0)


def test_upscale(tmp_path, rgb):
    path = write(tmp_path, "rgb.png", Image.fromarray(rgb[:10, :20]))
    assert mc.load_image(path, size=224).shape == (224, 224, 3)


def test_bad_files_and_arguments(tmp_path, rgb):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(MinicnnError, match="notes.png.*not a readable image"):
        mc.load_image(text)
    with pytest.raises(MinicnnError, match="no such image"):
        mc.load_image(tmp_path / "missing.png")
    path = write(tmp_path, "rgb.png", Image.fromarray(rgb))
    with pytest.raises(MinicnnError, match="mode"):
        mc.load_image(path, mode="CMYK")
    with pytest.raises(MinicnnError, match="size"):
        mc.load_image(path, size=0)
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(MinicnnError, match="cut.png"):
        mc.load_image(truncated)


def test_postscript_named_png_never_reaches_ghostscript(tmp_path):
    """A PostScript file named x.png: Pillow's EPS plugin would hand it to Ghostscript. A fake ``gs``
    first on PATH writes a marker if anything runs it; load_image refuses the file in one line."""
    import os
    import subprocess
    import sys

    bin_dir, marker = tmp_path / "bin", tmp_path / "ghostscript-ran"
    bin_dir.mkdir()
    (bin_dir / "gs").write_text(f'#!/bin/sh\ntouch "{marker}"\nexit 1\n')
    (bin_dir / "gs").chmod(0o755)
    (tmp_path / "x.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    probe = "from PIL import Image; Image.open('x.png').load()"  # what an unrestricted open does
    subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True)
    assert marker.exists()  # the fake gs is found and run: the hostile case is real
    marker.unlink()
    code = (
        "import minicnn as mc\nfrom minicnn.errors import MinicnnError\n"
        "try:\n    mc.load_image('x.png')\n"
        "except MinicnnError as exc:\n    print(exc)\n    raise SystemExit(2)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    expected = "x.png: not a readable image file (expected PNG, JPEG, BMP, GIF, TIFF, WebP or PGM/PPM)"
    assert done.stdout.strip() == expected
    assert not marker.exists()


def test_lab_tiff_is_one_line(tmp_path):
    """Pillow opens a CIELab TIFF as mode LAB, converts it to RGB by copying bytes (wrong colours)
    and refuses LAB -> L with a ValueError; both are one MinicnnError naming the mode."""
    path = tmp_path / "lab.tif"
    Image.new("LAB", (8, 8), (50, 0, 0)).save(path)
    assert Image.open(path).mode == "LAB"
    for mode in ("RGB", "L"):
        with pytest.raises(MinicnnError, match=r"lab.tif: image mode LAB is not read \(expected") as info:
            mc.load_image(path, mode=mode)
        assert "\n" not in str(info.value)
