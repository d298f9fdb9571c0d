"""Bad input at the command line: one line on stderr naming what was expected, exit code 2, no
traceback, and nothing written to the output folder."""

from __future__ import annotations

import pytest
from cli_helpers import minicnn


def fails(*args, match: str, out=None):
    r = minicnn(*args)
    assert r.code == 2, f"exit {r.code}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{r.stderr}"
    assert "Traceback" not in r.stderr and lines[0].startswith("minicnn ")
    assert match in lines[0], lines[0]
    if out is not None:
        assert not out.exists(), f"{out} was created by a failed run"
    return lines[0]


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


def test_missing_image(shipped, out, tmp_path):
    fails("saliency", "--image", tmp_path / "nope.png", "--out", out, match="not found", out=out)


def test_file_that_is_not_an_image(shipped, out, tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a picture")
    fails("saliency", "--image", fake, "--out", out, match="not a readable image", out=out)


def test_empty_folder(shipped, out, tmp_path):
    (tmp_path / "empty").mkdir()
    fails("saliency", "--image", tmp_path / "empty", "--out", out, match="has no images", out=out)


def test_unknown_target_lists_the_valid_ones(shipped, out):
    line = fails("saliency", "--target", "giraffe", "--out", out, match="unknown target", out=out)
    assert "predicted" in line and "0..9" in line


def test_target_out_of_range(shipped, out):
    fails("saliency", "--target", "10", "--out", out, match="out of range", out=out)


def test_unknown_layer_lists_the_valid_ones(shipped, out):
    import minicnn as mc

    net = mc.load(shipped.DEFAULT_MODEL)
    line = fails("reconstruct", "--layer", "nope", "--out", out, match="unknown layer", out=out)
    assert all(name in line for name in net.names)


@pytest.mark.parametrize("content", [b"not hdf5 at all", b"\x89HDF\r\n\x1a\n" + b"\0" * 64])
def test_weights_that_fail_to_load(content, out, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(content)
    fails("saliency", "--weights", bad, "--out", out, match="bad.h5", out=out)


def test_missing_weights(out, tmp_path):
    fails("saliency", "--weights", tmp_path / "none.h5", "--out", out, match="not found", out=out)


def test_output_folder_that_cannot_be_written(shipped, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    fails("saliency", "--out", blocker, match="not a folder")
    fails("saliency", "--out", blocker / "sub", match="cannot be written")
    assert blocker.read_text() == "a file where a folder should be"


def test_gpu_without_cuda_is_one_line(shipped, out):
    from minicnn.backend import gpu_available

    if gpu_available():
        pytest.skip("this machine has a GPU")
    fails("saliency", "--device", "gpu", "--out", out, match="CUDA", out=out)
    fails("demo", "--device", "gpu", "--out", out, match="CUDA", out=out)


def test_bad_option_values(shipped, out):
    fails("reconstruct", "--unit", "x,y", "--out", out, match="--unit", out=out)
    fails("saliency", "--smoothgrad", "-1", "--out", out, match="--smoothgrad", out=out)


# -- option values are checked before the model is read ---------------------------------------------
def test_verify_refuses_what_it_cannot_do_before_loading(tmp_path, out):
    """--against keras runs Keras in float32 and has no DeconvNet/guided rule: --float64 or those
    methods with it are refused at once, before the (missing) model file is looked at."""
    missing = tmp_path / "missing.pth"
    line = fails("verify", "--weights", missing, "--against", "keras", "--float64", "--out", out,
                 match="--float64 with --against keras", out=out)  # fmt: skip
    assert "float32" in line and "missing" not in line
    line = fails("verify", "--weights", missing, "--against", "keras", "--method", "guided", "--out", out,
                 match="--against keras computes gradient, saliency", out=out)  # fmt: skip
    for argv, expected in [
        (["--layout", "NCWH"], "--layout: invalid choice: 'NCWH'"),
        (["--fill", "blue"], "--fill: expected zero, grey, mean or a number, got 'blue'"),
        (["--tol", "0"], "--tol: expected a positive number, got 0"),
        (["--tol", "nan"], "--tol: expected a positive number, got 'nan'"),
        (["--size", "-3"], "--size: expected a positive integer, got -3"),
        (["--map", tmp_path / "nomap.npy"], "--map: " + str(tmp_path / "nomap.npy") + ": no such file"),
        (["--against", "captum", "--input", tmp_path / "x.npy"], "--input: "),
    ]:
        line = fails("verify", "--weights", missing, *argv, "--out", out, match=expected, out=out)
        assert "missing.pth" not in line


def test_verify_help_is_truthful_about_float64_and_formats():
    from cli_helpers import ok

    text = " ".join(ok("verify", "--help").stdout.split())
    assert "refused with --against keras" in text
    assert "multiplies float64 tensors in float32, so --float64 is refused with it" in text
    assert "--against keras supports gradient, saliency, gradient_x_input and grad_cam" in text


def test_model_file_errors_name_every_format_read(tmp_path, out):
    """A model that is missing, or is none of the formats, is refused with a line that names every
    format minicnn reads (it said '.h5' only while .pth, .safetensors and .onnx load)."""
    formats = ("minicnn .h5", "Keras .h5", "PyTorch .pth", ".safetensors", "ONNX .onnx")
    line = fails("saliency", "--weights", tmp_path / "none.pth", "--out", out, match="not found", out=out)
    assert all(f in line for f in formats), line
    text = tmp_path / "notes.onnx"
    text.write_text("not a model of any kind")
    line = fails("info", text, match="not an HDF5 file nor another model file")
    assert all(f in line for f in formats), line


@pytest.mark.parametrize(
    "argv, expected",
    [(["sanity", "--methods", "gradient,bogus"], "unknown method 'bogus'"),
     (["sanity-study", "--methods", "bogus"], "unknown method 'bogus'"),
     (["sanity", "--tests", "bogus"], "unknown test 'bogus'"),
     (["demo", "--tools", "saliency,bogus"], "--tools: unknown step 'bogus'"),
     (["maximize", "--units", "x"], "--unit 'x'"),
     (["reconstruct", "--unit", "a,b"], "--unit 'a,b'")],
    ids=lambda a: " ".join(a) if isinstance(a, list) else None,
)  # fmt: skip
def test_names_and_lists_are_checked_before_the_model_is_read(argv, expected, tmp_path, out):
    """Names that do not depend on the network (methods, tests, steps, unit syntax) are refused before
    the (missing) model is looked at; only layer and class names wait for it."""
    line = fails(*argv, "--weights", tmp_path / "missing.h5", "--out", out, match=expected, out=out)
    assert "missing.h5" not in line
