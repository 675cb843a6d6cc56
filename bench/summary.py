"""Runs the bench suite once and prints, per group, every implementation's median time and how
many times slower it is than ours. `python -m pyprune_ext bench` calls main()."""
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


def _impl(bench):
    return bench["params"].get("impl", bench["name"])


def _median(bench):
    """Median seconds per call (a CUDA round holds several calls and one synchronize)."""
    return bench["stats"]["median"] / bench.get("extra_info", {}).get("calls_per_round", 1)


def format_tables(report):
    groups = defaultdict(list)
    for bench in report["benchmarks"]:
        groups[bench["group"]].append(bench)
    lines = []
    for name, benches in groups.items():
        ours = [b for b in benches if _impl(b) == "ours"]
        base = _median(ours[0]) if ours else None
        lines.append(f"\n{name}")
        per = benches[0].get("extra_info", {}).get("per_mask")
        unit = f"{'us/mask':>9}" if per else f"{'GB/s':>9}"
        lines.append(f"  {'implementation':<22}{'median ms':>12}{'x ours':>10}{unit}")
        for bench in sorted(benches, key=lambda b: -_median(b)):
            median = _median(bench)
            ratio = f"{median / base:.1f}" if base else "-"
            size = bench.get("extra_info", {}).get("bytes")
            rate = f"{size / median / 1e9:.1f}" if size else ""
            if per:
                rate = f"{median / per * 1e6:.2f}"
            lines.append(f"  {_impl(bench):<22}{median * 1e3:>12.2f}{ratio:>10}{rate:>9}")
    return "\n".join(lines)


def main(argv=()):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        cmd = [sys.executable, "-m", "pytest", HERE, "-q", "-p", "no:cacheprovider",
               f"--benchmark-json={out}", "--benchmark-disable-gc", *argv]
        print("running the bench suite (pytest-benchmark)...", flush=True)
        run = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
        if run.returncode != 0 or not os.path.exists(out):
            print(run.stdout[-20000:], run.stderr[-5000:], sep="\n")
            return run.returncode or 1
        with open(out) as f:
            report = json.load(f)
    print(format_tables(report))
    print("\n'x ours': time / our time (higher = ours faster). GB/s: input bytes / time.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
