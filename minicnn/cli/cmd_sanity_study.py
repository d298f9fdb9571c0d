"""``minicnn sanity-study``: the parameter randomisation test over a dataset (Adebayo et al. 2018)."""

from __future__ import annotations

from pathlib import Path

from minicnn.cli.job_options import add_job_options, dataset_and_targets, runner_of
from minicnn.cli.options import add_common
from minicnn.cli.report import Report

HELP = "the randomisation sanity check over a dataset: mean similarity per method, metric and step"
EPILOG = """\
Runs the cascading (and with --tests cascade,independent also the independent) model parameter
randomisation test of Adebayo et al. 2018 ("Sanity Checks for Saliency Maps", sec. 3) on every image
of a dataset (a folder, searched recursively, an .npz, or the shipped digits): each method's map on
the trained network is compared with its map after the top k learned layers (cascading) or the k-th
layer alone (independent) are re-initialised. Prints the mean over images of each similarity
(Spearman with and without abs, SSIM, HOG correlation) per method and step, writes
sanity_study.txt (the tables) and sanity_<test>.csv (one row per image, method and metric), and with
--save-arrays sanity_<test>.npz (the per-image similarities). Each image gets what 'minicnn sanity'
gives it alone with the same --seed, whatever the shard it falls in. The dataset is cut into shards
that run in this process, in --jobs N processes or on a Dask cluster (--scheduler); --resume skips
finished shards. --protocol chooses how maps are compared (minicnn, adebayo: the authors' code,
quantus: Quantus' MPRT defaults), --order top-down (the paper's) or bottom-up. Writes
method_tests.md, the method x test table of the tests run (each cell: its number and verdict, the
protocol above), as the README's sanity table is written.

examples:
  minicnn sanity-study --count 100 --methods gradient,guided --jobs 2
  minicnn sanity-study --image photos/ --weights vgg16.h5 --methods gradient,guided,grad_cam \\
                       --tests cascade,independent --scheduler tcp://10.0.0.1:8786
"""

TESTS = ("cascade", "independent")


def add_arguments(parser) -> None:
    from minicnn.cli.options import positive_int

    add_common(parser, target=False)
    parser.add_argument(
        "--target", default="predicted", metavar="CLASS",
        help="class index for every image, or 'predicted' (default: each image's predicted class)",
    )  # fmt: skip
    parser.add_argument(
        "--methods", default="gradient,guided", metavar="LIST",
        help="comma-separated methods of 'minicnn sanity', or 'all' (default gradient,guided)",
    )  # fmt: skip
    parser.add_argument(
        "--tests", default="cascade", metavar="LIST",
        help="cascade, independent or cascade,independent (default cascade)",
    )  # fmt: skip
    parser.add_argument(
        "--layers", default=None, metavar="LIST",
        help="comma-separated learned layers to re-initialise (default: all, in --order)",
    )  # fmt: skip
    parser.add_argument(
        "--protocol", default="minicnn", choices=("minicnn", "adebayo", "quantus"),
        help="how two maps are compared (default minicnn)",
    )  # fmt: skip
    parser.add_argument(
        "--order", default="top-down", choices=("top-down", "bottom-up"),
        help="the order in which layers are re-initialised (default top-down, the paper's)",
    )  # fmt: skip
    parser.add_argument(
        "--count", type=positive_int, default=100,
        help="shipped held-out digits without --image (default 100)",
    )  # fmt: skip
    add_job_options(parser, shard_size=16)


def run(args) -> Report:
    from dataclasses import replace

    import numpy as np

    from minicnn.cli.cmd_sanity import choose
    from minicnn.cli.context import preprocessing
    from minicnn.cli.loading import load_network
    from minicnn.cli.output import open_output
    from minicnn.jobs.perimage import run_per_image
    from minicnn.jobs.runners import Workers
    from minicnn.jobs.sanity import SanityJob, merge, sanity_shard
    from minicnn.jobs.shards import file_hash
    from minicnn.jobs.worker import remember
    from minicnn.tools.sanity import check_layers
    from minicnn.tools.sanity_methods import METHODS, available_methods, check_methods, method_names
    from minicnn.tools.sanity_protocols import measures
    from minicnn.tools.sanity_suite import judge
    from minicnn.tools.sanity_table import markdown, record

    tests = choose(args.tests, TESTS, "test")
    if args.methods.strip() != "all":
        method_names(args.methods)  # the names, before the model loads
    runner = runner_of(args)
    out = open_output(args, "sanity-study")
    net = load_network(args.weights, args.device)
    how = preprocessing(net, args)  # --preprocess, else the file's; said below
    methods = available_methods(net) if args.methods.strip() == "all" else method_names(args.methods)
    methods = check_methods(net, methods)
    layers = check_layers(net, args.layers, args.order)
    metrics = measures(args.protocol)
    data, targets = dataset_and_targets(args, net)
    weights = str(Path(args.weights).absolute())
    job = SanityJob(weights, file_hash(weights), args.device, data, tuple(methods), tuple(layers),
                    seed=int(args.seed), protocol=args.protocol)  # fmt: skip
    remember(net, weights, job.model_sha256, args.device)
    report = out.report
    report.model, report.inputs = str(args.weights), [data.path]
    report.say(f"minicnn sanity-study: {', '.join(methods)}, {' and '.join(tests)} randomisation, "
               f"{Path(args.weights).name}, {len(data)} image(s) in {data.path}, shards of "
               f"{args.shard_size}, run {runner.describe()}")  # fmt: skip
    report.say(f"  {how}")
    report.settings["preprocess"] = net.meta["preprocess"]
    report.methods += [f"{METHODS[m][0]} ({METHODS[m][1]})" for m in methods]
    report.methods.append("model parameter randomisation test (Adebayo et al. 2018, sec. 3)")
    report.settings.update(tests=tests, seed=args.seed, layers=layers, target=args.target,
                           protocol=args.protocol, order=args.order)  # fmt: skip
    tables, records = [], []
    with Workers(runner) as workers:
        for test in tests:
            part = replace(job, cascade=test == "cascade")
            work = args.work if args.work is not None else out.folder / "shards"
            arrays, bad = run_per_image(
                sanity_shard, part, work, workers, phase=test, keep=("similarity", "target"),
                targets=targets, shard_size=args.shard_size, resume=args.resume, skip_bad=args.skip_bad,
                say=report.say,
            )  # fmt: skip
            res = merge(part, arrays)
            ids = [data.ids[i] for i in arrays["index"]]
            tables += [res.table(metric) + "\n" for metric in metrics]
            for m in methods:  # the cascade's verdict reads its last step, the independent test's the mean
                means = {
                    k: float(v[-1] if test == "cascade" else np.mean(v[1:]))
                    for k, v in res.similarity[m].items()
                }
                c = judge(means, args.protocol)
                records.append(
                    record(m, test, c.protocol, c.measure, c.value, "changed" if c.changed else "alike")
                )
            report.say(res.table("spearman_abs"))
            steps = ["trained", *layers]
            rows = ["image,target,method,metric," + ",".join(steps)]
            for j, image in enumerate(ids):
                for m in methods:
                    for metric in metrics:
                        values = ",".join(f"{v:.6f}" for v in res.per_image[m][metric][:, j])
                        rows.append(f"{image},{res.targets[j]},{m},{metric},{values}")
            out.text(f"sanity_{test}.csv", "\n".join(rows) + "\n")
            # (methods, metrics, steps + 1): the means printed and reported
            mean = np.array([[res.similarity[m][metric] for metric in metrics] for m in methods])
            out.arrays(f"sanity_{test}.npz", {"similarity": arrays["similarity"], "mean": mean,
                                              "target": res.targets},
                       {"model": str(args.weights), "method": f"{test} randomisation", "images": ids,
                        "methods": methods, "metrics": list(metrics), "steps": steps, "seed": args.seed,
                        "dataset": data.path})  # fmt: skip
            for m in methods:
                for metric in metrics:
                    for step, v in zip(steps, res.similarity[m][metric]):
                        report.numbers[f"{test} {m} {metric} {step}"] = float(v)
            report.numbers.update({"images": len(ids), "unreadable images": len(bad)})
    out.text("sanity_study.txt", "\n".join(tables))
    table = markdown(records)
    head = f"protocol: {args.protocol}; cascade: the last step; independent: the mean over the steps"
    report.say(head)
    report.say(table)
    report.tables["method_tests"] = records
    out.text("method_tests.md", head + "\n\n" + table + "\n")
    return report
