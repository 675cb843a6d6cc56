"""Command line: `python -m pyprune_ext bench [pytest args]` runs the bench suite of the
checkout and prints the summary table (reference, composed PyTorch, ours, ratios)."""
import argparse
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pyprune_ext")
    commands = parser.add_subparsers(dest="command", required=True)
    bench = commands.add_parser("bench", help="run the bench suite and print the ratio tables")
    bench.add_argument("--quick", action="store_true", help="small shapes (a smoke run)")
    # anything else goes to pytest, e.g. -k info
    args, args.pytest_args = parser.parse_known_args(argv)
    if args.command == "bench":
        return _bench(args)
    return 2
