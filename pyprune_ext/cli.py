"""Command line of pyprune_ext: the pruning workflows of the papers, reproduce, and the bench.

A workflow command (magnitude, region, information, taylor, single-shot, sparse, structured) runs
with full settings, or short ones with --quick; every field of its config is an option
(--epochs 3, --schedule 0.5,0.9). It prints a summary and writes results.json and its figures to
--out (default runs/<command>); with --seeds N it runs seeds 0..N-1 and prints each setting's mean,
standard deviation and 95 % interval. reproduce runs them all over seeds and writes the report, a
computed verdict on every paper claim; bench runs the bench suite of the checkout and prints its
ratio tables.
"""
import argparse
import dataclasses
import importlib.util
import os
import sys

from .prune.common import SHARED_FIELDS, describe_limits, format_value

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_HELP = """Runs the bench suite of the source checkout (bench/, pytest-benchmark): per op and shape, the
NumPy reference, the best composed-PyTorch peers and ours, in one run, then prints a table of
median times and ratios, headed by the CPU, its kernel capability, the threads, and the read bandwidth
and GEMM rate measured now. Every argument it does not know goes to pytest (for example -k info
to run only the information-score groups)."""


def _bench(args):
    path = os.path.join(REPO, "bench", "summary.py")
    if not os.path.exists(path):
        print("the bench suite lives in the source checkout (bench/); install with -e from it",
              file=sys.stderr)
        return 2
    if args.quick:
        os.environ["PYPRUNE_BENCH_QUICK"] = "1"
    spec = importlib.util.spec_from_file_location("pyprune_bench_summary", path)
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    return summary.main(args.pytest_args)


def _parser_for(default):
    """Parses a command-line value like ``default``: tuples are comma-separated lists."""
    if isinstance(default, tuple):
        item = type(default[0]) if default else str
        return lambda text: tuple(item(part) for part in text.split(",") if part)
    return type(default)


def _seed(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _write(line):
    """Prints above any progress bar."""
    from tqdm.auto import tqdm
    tqdm.write(line)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_common(parser):
    parser.add_argument("--quick", action="store_true",
                        help="short settings (seconds to a minute on 2 cores; figures say 'quick run')")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the init, batch order, scored batches and masks (the data split never "
                             "changes): an integer >= 0 (default 0); with --seeds, the first seed")
    parser.add_argument("--seeds", type=_positive, default=None,
                        help="run this many seeds (--seed, --seed + 1, ...) and report each setting's mean, "
                             "standard deviation and Student-t 95 %% interval; finished seeds are kept")
    parser.add_argument("--jobs", type=_positive, default=1,
                        help="with --seeds: runs at once, as processes sharing the CPU threads (default 1)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (the summary lines are still printed)")


def _add_workflow(commands, name, config_class, help_text):
    parser = commands.add_parser(name, help=help_text, description=help_text)
    _add_common(parser)
    parser.add_argument("--out", default=os.path.join("runs", name),
                        help=f"folder for results.json and figures (default: runs/{name})")
    full = config_class()
    for field in dataclasses.fields(config_class):
        if field.name in SHARED_FIELDS:
            continue
        default = getattr(full, field.name)
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                            type=_parser_for(default), help=field_help(config_class, field.name, default))


def field_help(config_class, name, default):
    """'<meaning>; <allowed values>; full run: <default>[, --quick: <value>]' (% escaped for argparse)."""
    parts = [config_class.HELP[name]]
    if name in config_class.CHOICES:
        parts.append("from " + ", ".join(map(str, config_class.CHOICES[name])))
    elif name in config_class.LIMITS:
        kind = "integers" if isinstance(default, int) or (isinstance(default, tuple) and default
                                                          and isinstance(default[0], int)) else "numbers"
        parts.append(f"{kind} in {describe_limits(config_class.LIMITS[name])}")
    shown = f"full run: {format_value(default)}"
    if name in config_class.QUICK:
        shown += f", --quick: {format_value(config_class.QUICK[name])}"
    parts.append(shown)
    return "; ".join(parts).replace("%", "%%")


def _run_workflow(parser, args, name, config_class, run):
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)
                 if f.name not in SHARED_FIELDS and getattr(args, f.name) is not None}
    settings = dict(out_dir=args.out, seed=args.seed, show_progress=not args.no_progress, **overrides)
    try:  # every value is checked before any work; a bad one is a usage error
        config = config_class.quick(**settings) if args.quick else config_class(**settings)
    except ValueError as error:
        parser.error(str(error))
    if args.seeds:
        from .prune.reproduce import reproduce
        from .prune.runner import Task
        reproduce(quick=args.quick, out_dir=args.out, seeds=range(args.seed, args.seed + args.seeds),
                  jobs=args.jobs, tasks=(Task(name, name, overrides),), report=os.path.join(args.out, "results.md"),
                  show_progress=not args.no_progress, echo=_write)
        return 0
    results = run(config)
    print("\n".join(results["summary"]))
    figures = [path for path in results.get("figures", []) if path]
    if config.out_dir:
        print(f"results: {os.path.join(config.out_dir, 'results.json')}"
              + (f"; figures: {', '.join(figures)}" if figures else ""))
    return 0


def main(argv=None):
    from .prune import WORKFLOWS
    parser = argparse.ArgumentParser(prog="python -m pyprune_ext", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, workflow in WORKFLOWS.items():
        _add_workflow(commands, name, workflow.config, workflow.help)
    about_reproduce = ("Runs every workflow (or those in --only) over --seeds seeds, each (workflow, seed) "
                       "kept when done, and writes the report: every paper claim with the paper's figure, ours "
                       "(mean and 95 % interval), a paired t-test and a computed verdict; a table and a figure "
                       "per workflow; the data, settings, machine and wall time.")
    repro = commands.add_parser("reproduce", help="run every workflow over seeds; a verdict on every paper claim",
                                description=about_reproduce)
    _add_common(repro)
    repro.add_argument("--out", default=os.path.join("runs", "reproduce"),
                       help="folder for each (workflow, seed)'s results and figures (default: runs/reproduce)")
    repro.add_argument("--report", default=None,
                       help="the report's path (default: docs/results.md; with --quick, <out>/results.md); its "
                            "figures go to figures/results/ beside it")
    repro.add_argument("--only", default=None,
                       help=f"comma-separated workflow or task names (information-watch, structured-resnet, ...), "
                            f"from {', '.join(WORKFLOWS)} (default: all)")
    bench = commands.add_parser("bench", help="run the bench suite and print the ratio tables",
                                description=BENCH_HELP, usage="%(prog)s [--quick] [pytest arguments ...]")
    bench.add_argument("--quick", action="store_true",
                       help="shapes divided by 50 along their largest axis (a smoke run, as in CI)")
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.pytest_args = extra
        return _bench(args)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "reproduce":
        from .prune.reproduce import reproduce
        only = tuple(args.only.split(",")) if args.only else None
        from .prune.reproduce import TASKS
        unknown = set(only or ()) - set(WORKFLOWS) - {t.key for t in TASKS}
        if unknown:
            parser.error(f"--only: unknown workflow(s) {sorted(unknown)}; choose from "
                         f"{sorted(set(WORKFLOWS) | {t.key for t in TASKS})}")
        seeds = range(args.seed, args.seed + (args.seeds or 1))
        reproduce(quick=args.quick, out_dir=args.out, seeds=seeds, jobs=args.jobs, only=only,
                  report=args.report, show_progress=not args.no_progress, echo=_write)
        return 0
    workflow = WORKFLOWS[args.command]
    return _run_workflow(commands.choices[args.command], args, args.command, workflow.config, workflow.run)
