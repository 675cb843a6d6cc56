"""Command line: ``python -m pyprune_ext <command>``.

* ``magnitude``, ``region``, ``information``, ``taylor``, ``single-shot``, ``sparse``: one pruning
  workflow with full settings (``--quick`` for about a minute); every field of its config is an
  option (``--epochs 3``, ``--schedule 0.5,0.9``). Prints the summary, writes ``results.json`` and
  the figures to ``--out`` (default ``runs/<command>``).
* ``reproduce``: all six, each result beside the paper's figure.
* ``bench``: the bench suite of the checkout and its ratio tables (reference, composed PyTorch, ours).
"""
import argparse
import dataclasses
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_FIELDS = ("out_dir", "seed", "show_progress", "quick_run")


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


def _add_common(parser):
    parser.add_argument("--quick", action="store_true", help="short settings (about a minute)")
    parser.add_argument("--seed", type=_seed, default=0, help="random seed, an integer >= 0 (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


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
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                            type=_parser_for(default), help=f"full run: {shown}")


def _run_workflow(parser, args, config_class, run):
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)
                 if f.name not in SHARED_FIELDS and getattr(args, f.name) is not None}
    settings = dict(out_dir=args.out, seed=args.seed, show_progress=not args.no_progress, **overrides)
    try:  # every value is checked before any work; a bad one is a usage error
        config = config_class.quick(**settings) if args.quick else config_class(**settings)
    except ValueError as error:
        parser.error(str(error))
    results = run(config)
    print("\n".join(results["summary"]))
    figures = [path for path in results.get("figures", []) if path]
    if config.out_dir:
        print(f"results: {os.path.join(config.out_dir, 'results.json')}"
              + (f"; figures: {', '.join(figures)}" if figures else ""))
    return 0


def main(argv=None):
    from .prune import WORKFLOWS
    parser = argparse.ArgumentParser(prog="python -m pyprune_ext", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (config_class, _, help_text) in WORKFLOWS.items():
        _add_workflow(commands, name, config_class, help_text)
    repro = commands.add_parser("reproduce", help="run all six workflows beside the papers' figures")
    _add_common(repro)
    repro.add_argument("--out", default=os.path.join("runs", "reproduce"))
    repro.add_argument("--only", default=None, help="comma-separated workflow names")
    bench = commands.add_parser("bench", help="run the bench suite and print the ratio tables")
    bench.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    # bench passes anything else to pytest, e.g. -k info
    args, extra = parser.parse_known_args(argv)
    if args.command == "bench":
        args.pytest_args = extra
        return _bench(args)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "reproduce":
        from .prune.reproduce import reproduce
        only = tuple(args.only.split(",")) if args.only else None
        unknown = set(only or ()) - set(WORKFLOWS)
        if unknown:
            parser.error(f"--only: unknown workflow(s) {sorted(unknown)}; choose from {list(WORKFLOWS)}")
        reproduce(quick=args.quick, out_dir=args.out, seed=args.seed, show_progress=not args.no_progress,
                  only=only)
        return 0
    config_class, run, _ = WORKFLOWS[args.command]
    return _run_workflow(commands.choices[args.command], args, config_class, run)
