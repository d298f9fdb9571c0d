"""The randomisation sanity check over a dataset (``minicnn sanity-study``, jobs/sanity.py): each
image's similarities equal mc.randomization_test run on that image alone with the same seed, the
reported means are the means of those, and neither the shard size, two worker processes nor a
resumed run changes a bit of the result."""

from __future__ import annotations

import numpy as np
import pytest

import minicnn as mc
from minicnn.cli.main import main
from minicnn.paths import DEFAULT_MODEL, HELDOUT
from minicnn.tools.sanity_protocols import measures

METRICS = measures()  # the default protocol's measures, the tie share among them

N = 12  # the first 12 shipped held-out digits (the .npz dataset)
METHODS = ["gradient", "smoothgrad"]  # SmoothGrad's noise is drawn per batch: the job runs per image
SEED = 3
TESTS = ("cascade", "independent")


def study(out, *extra):
    """``minicnn sanity-study`` in this process; {test: its --save-arrays arrays}."""
    args = ["sanity-study", "--count", N, "--methods", ",".join(METHODS), "--seed", SEED, "--out", out,
            "--save-arrays", "--no-progress", *extra]  # fmt: skip
    assert main([str(a) for a in args]) == 0
    arrays = {}
    for test in TESTS:
        if (out / f"sanity_{test}.npz").is_file():
            with np.load(out / f"sanity_{test}.npz") as data:
                arrays[test] = {k: data[k] for k in data.files if k != "meta"}
    return arrays


def assert_same(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for test in a:
        for name in a[test]:
            assert np.array_equal(a[test][name], b[test][name]), f"{test} {name} differs"


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """The in-process run in shards of 5 (5 + 5 + 2 images), both tests: (out folder, arrays)."""
    out = tmp_path_factory.mktemp("study")
    return out, study(out, "--shard-size", 5, "--tests", "cascade,independent")


@pytest.fixture(scope="module")
def alone():
    """{test: (N, methods, metrics, steps + 1)}: mc.randomization_test on each image by itself."""
    net = mc.load(DEFAULT_MODEL)
    with np.load(HELDOUT) as data:
        x = mc.preprocess(data["images"][:N, :, :, None], "unit")
    out = {}
    for test in TESTS:
        rows = []
        for i in range(N):
            res = mc.randomization_test(
                net, x[i : i + 1], methods=METHODS, cascade=test == "cascade", seed=SEED
            )
            rows.append([[res.per_image[m][q][:, 0] for q in METRICS] for m in METHODS])
        out[test] = np.array(rows)
    return out


def test_each_image_equals_the_tool_alone_and_the_means_are_their_means(first, alone):
    _, arrays = first
    for test in TESTS:
        got = arrays[test]["similarity"]
        assert got.shape == (N, len(METHODS), len(METRICS), 7)  # 6 learned layers + the trained step
        assert np.array_equal(got, alone[test]), test
        mean = np.array([[[np.mean(alone[test][:, a, q, k]) for k in range(7)] for q in range(len(METRICS))]
                         for a in range(len(METHODS))])  # fmt: skip
        np.testing.assert_allclose(arrays[test]["mean"], mean, rtol=0, atol=1e-15)
        alike = [q for q, name in enumerate(METRICS) if name != "tied"]
        np.testing.assert_allclose(
            got[:, :, alike, 0], 1.0, rtol=0, atol=1e-12
        )  # step 0: each map with itself
    # the comparison can fail: the cascade is not the independent test, and another seed differs
    assert not np.allclose(arrays["cascade"]["similarity"][..., 2:], alone["independent"][..., 2:])
    net = mc.load(DEFAULT_MODEL)
    with np.load(HELDOUT) as data:
        x0 = mc.preprocess(data["images"][:1, :, :, None], "unit")
    other = mc.randomization_test(net, x0, methods=METHODS, seed=SEED + 1)
    assert not np.allclose(
        other.per_image["smoothgrad"]["spearman_abs"][1:, 0], alone["cascade"][0, 1, 0, 1:]
    )


def test_shard_size_and_two_processes_change_nothing(first, tmp_path):
    cascade = {"cascade": first[1]["cascade"]}  # the independent test runs through the same code
    assert_same(study(tmp_path / "one", "--shard-size", 12), cascade)
    assert_same(study(tmp_path / "two", "--shard-size", 3, "--jobs", 2), cascade)


def test_resume_reuses_finished_shards(first, tmp_path, monkeypatch):
    import shutil

    from minicnn.jobs import sanity

    out, arrays = first
    copy = tmp_path / "copy"
    shutil.copytree(out / "shards", copy / "shards")
    (copy / "shards" / "cascade-000000005-000000010.npz").unlink()
    ran = []
    real = sanity.sanity_shard
    monkeypatch.setattr(sanity, "sanity_shard", lambda task: ran.append(task[1]) or real(task))
    again = study(copy, "--shard-size", 5, "--tests", "cascade,independent", "--resume")
    assert [(s.start, s.stop) for s in ran] == [(5, 10)]  # the lost shard alone, in the cascade
    assert_same(again, arrays)


@pytest.mark.parametrize(
    "option, message",
    [(["--methods", "gradient,nope"], "unknown method 'nope'"), (["--tests", "both"], "unknown test 'both'"),
     (["--layers", "fc9"], "unknown or parameter-free layer 'fc9'"), (["--target", "10"], "10 classes")],
)  # fmt: skip
def test_bad_options_one_line_nothing_written(option, message, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sanity-study", "--count", "2", "--out", str(out), *option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_method_tests_table_reads_the_means(first):
    """method_tests.md: each cell's verdict from the means the study printed (the cascade's last
    step, the independent test's mean over the steps), with the tie rule and the protocol."""
    from minicnn.tools.sanity_protocols import verdict
    from minicnn.tools.sanity_suite import CHANGED

    out, arrays = first
    text = (out / "method_tests.md").read_text()
    assert text.startswith("protocol: minicnn")
    for test in TESTS:
        for a, m in enumerate(METHODS):
            mean = arrays[test]["mean"][a]  # (measures, steps + 1)
            values = {
                name: (mean[q, -1] if test == "cascade" else mean[q, 1:].mean())
                for q, name in enumerate(METRICS)
            }
            measure, value, word = verdict(values, CHANGED)
            title = {"gradient": "Gradient", "smoothgrad": "SmoothGrad"}[m]
            row = next(line for line in text.splitlines() if line.startswith(f"| {title} |"))
            cell = row.split("|")[2 + TESTS.index(test)].strip()
            assert cell == f"{value:.2f}{' fg' if measure == 'spearman_fg' else ''} {word}", (test, m, cell)
    # the digits' gradient: zeros on the background tie, the verdict reads the foreground
    assert "| Gradient | " in text and " fg changed" in text.split("| Gradient |")[1].splitlines()[0]
