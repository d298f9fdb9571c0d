"""Bad input to a dataset-wide job: one line on stderr and exit 2, quickly, with nothing half-done;
an unreadable image is reported by name, ends the run without --skip-bad and is left out with it."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
from jobs_support import LAYER

from minicnn.cli.main import main
from minicnn.errors import MinicnnError
from minicnn.paths import DEFAULT_MODEL, HELDOUT

SMALL = ["--layer", LAYER, "--channels", "0", "1", "--k", "3", "--shard-size", "10", "--no-progress"]


def one_line_error(capsys, args):
    try:
        code = main(args)
    except SystemExit as exc:  # an option's value refused by the parser, before the command runs
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    errors = [line for line in err if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.fixture
def small_folder(tmp_path):
    """30 held-out digits as PNG files and one file that is not an image."""
    from PIL import Image

    folder = tmp_path / "data"
    folder.mkdir()
    with np.load(HELDOUT) as data:
        for i, img in enumerate(data["images"][:30]):
            Image.fromarray(img).save(folder / f"d{i:02d}.png")
    (folder / "d05b.png").write_bytes(b"not a png")
    return folder


def test_unreachable_scheduler(capsys, small_folder, tmp_path):
    start = time.perf_counter()
    line = one_line_error(capsys, ["topk", "--image", str(small_folder), "--out", str(tmp_path / "o"),
                                   "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "3",
                                   *SMALL])  # fmt: skip
    assert time.perf_counter() - start < 20  # the connection timeout is 3 s
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in line


def test_empty_folder_and_missing_path(capsys, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    line = one_line_error(
        capsys, ["topk", "--image", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), *SMALL]
    )
    assert "has no images" in line
    line = one_line_error(
        capsys, ["topk", "--image", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), *SMALL]
    )
    assert "not found" in line
    assert not (tmp_path / "o").exists()  # nothing written


def test_a_dataset_path_the_workers_cannot_read(small_folder, tmp_path):
    """The client lists the folder; the worker then finds no folder at that path."""
    import minicnn as mc
    from minicnn.jobs.dataset import open_dataset
    from minicnn.jobs.runners import Runner, Workers
    from minicnn.jobs.shards import file_hash
    from minicnn.jobs.topk import TopkJob, run_topk

    net = mc.load(DEFAULT_MODEL)
    data = open_dataset(small_folder, (1, 28, 28), "unit")
    job = TopkJob(str(DEFAULT_MODEL), file_hash(DEFAULT_MODEL), "cpu", data, LAYER, 3, "deconvnet", (0,), 8)
    shutil.move(small_folder, tmp_path / "moved")
    with Workers(Runner(progress=False)) as workers, pytest.raises(MinicnnError, match="cannot be read here"):
        run_topk(job, net, tmp_path / "work", workers, shard_size=10, say=lambda line: None)
    assert not list((tmp_path / "work").glob("*.npz"))  # no shard result for images never read


def test_an_unreadable_image_is_reported_then_skipped(capsys, small_folder, tmp_path):
    args = ["topk", "--image", str(small_folder), "--out", str(tmp_path / "o"), "--save-arrays", *SMALL]
    line = one_line_error(capsys, args)
    assert "1 unreadable image(s), first d05b.png" in line and "--skip-bad" in line
    assert len(list((tmp_path / "o" / "shards" / f"topk-{LAYER}").glob("scan-*.npz"))) == 4  # all kept
    assert main([*args, "--resume", "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "resumed: 4 of 4 scan shard(s)" in out and "unreadable image d05b.png" in out
    with np.load(tmp_path / "o" / f"{LAYER}_top3.npz") as data:
        ids = data["ids"]
    # the same as the folder without the bad file
    (small_folder / "d05b.png").unlink()
    assert (
        main(["topk", "--image", str(small_folder), "--out", str(tmp_path / "p"), "--save-arrays", *SMALL])
        == 0
    )
    with np.load(tmp_path / "p" / f"{LAYER}_top3.npz") as data:
        assert (data["ids"] == ids).all()


def test_a_worker_running_other_code_refuses(small_folder, tmp_path):
    """On a cluster every host must run the same minicnn: a task from a client whose code hash
    differs is refused in one line (results would otherwise silently differ)."""
    from dataclasses import replace

    import minicnn as mc
    from minicnn.jobs.dataset import open_dataset
    from minicnn.jobs.runners import Runner, Workers
    from minicnn.jobs.shards import code_version, file_hash
    from minicnn.jobs.topk import TopkJob, run_topk

    data = open_dataset(small_folder, (1, 28, 28), "unit")
    job = TopkJob(str(DEFAULT_MODEL), file_hash(DEFAULT_MODEL), "cpu", data, LAYER, 3, "deconvnet", (0,), 8)
    assert job.code == code_version()
    other = replace(job, code="0.0.1+0123456789abcdef")
    with (
        Workers(Runner(progress=False)) as workers,
        pytest.raises(MinicnnError, match="same version on every host"),
    ):
        run_topk(
            other, mc.load(DEFAULT_MODEL), tmp_path / "work", workers, shard_size=10, say=lambda line: None
        )
