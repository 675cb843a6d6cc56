"""Runs the bench suite once and prints, per group, every implementation's median time and how
many times slower it is than ours. `python -m pyprune_ext bench` calls main()."""
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


def _impl(bench):
    return bench["params"].get("impl", bench["name"])


def _median(bench):
    """Median seconds per call (a CUDA round holds several calls and one synchronize)."""
    return bench["stats"]["median"] / bench.get("extra_info", {}).get("calls_per_round", 1)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _best_seconds(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine_facts():
    """What the numbers below depend on: the CPU, the kernels' capability, the threads, and this
    machine's read bandwidth (a 512 MiB float32 torch.sum) and fp32 GEMM rate (2048^3 matmul),
    measured now, in this run."""
    import torch

    import pyprune_ext as pp
    big = torch.ones(128 << 20)
    bandwidth = big.numel() * 4 / _best_seconds(big.sum, 5)
    del big
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    gflops = 2 * 2048**3 / _best_seconds(lambda: a @ b, 5) / 1e9
    return {"cpu": cpu_model(), "capability": pp.cpu_capability(), "capabilities": pp.supported_cpu_capabilities(),
            "threads": torch.get_num_threads(), "bandwidth": bandwidth, "gflops": gflops,
            "torch": torch.__version__}


def format_header(facts):
    return "\n".join([
        f"CPU: {facts['cpu']}, {facts['threads']} threads, torch {facts['torch']}",
        f"CPU kernel capability: {facts['capability']} (supported: {', '.join(facts['capabilities'])}; "
        f"'ours <capability>' rows force a lower one)",
        f"read bandwidth: {facts['bandwidth'] / 1e9:.1f} GB/s (512 MiB torch.sum); "
        f"fp32 GEMM: {facts['gflops']:.0f} GFLOP/s (2048^3 torch.matmul)"])


def _label(bench):
    """The row's name; our rows with the CPU capability they ran (\"ours [avx512]\")."""
    capability = bench.get("extra_info", {}).get("capability")
    if _impl(bench) == "ours" and capability:
        return f"ours [{capability}]"
    return _impl(bench)


# Within this, a lower capability's row counts as noise, not as faster.
CAPABILITY_NOISE = 0.05


def _capability_warnings(benches):
    """A line for every lower capability that ran faster than the one the dispatcher picks."""
    ours = [b for b in benches if _impl(b) == "ours"]
    if not ours:
        return []
    picked = _median(ours[0])
    return [f"  ! '{_impl(b)}' is {picked / _median(b):.2f}x faster than ours [{ours[0]['extra_info'].get('capability')}]"
            for b in benches
            if _impl(b).startswith("ours ") and _median(b) * (1 + CAPABILITY_NOISE) < picked]


def format_tables(report, bandwidth=None):
    groups = defaultdict(list)
    for bench in report["benchmarks"]:
        groups[bench["group"]].append(bench)
    lines = []
    for name, benches in groups.items():
        ours = [b for b in benches if _impl(b) == "ours"]
        base = _median(ours[0]) if ours else None
        lines.append(f"\n{name}")
        per = benches[0].get("extra_info", {}).get("per_mask")
        unit = f"{'us/mask':>9}" if per else f"{'GB/s':>9}{'% bw':>7}"
        lines.append(f"  {'implementation':<26}{'median ms':>12}{'x ours':>10}{unit}")
        lines.extend(_capability_warnings(benches))
        for bench in sorted(benches, key=lambda b: -_median(b)):
            median = _median(bench)
            ratio = f"{median / base:.1f}" if base else "-"
            size = bench.get("extra_info", {}).get("bytes")
            rate = f"{size / median / 1e9:>9.1f}" if size else ""
            if size and bandwidth:  # share of the machine's read bandwidth: memory-bound rows
                rate += f"{100 * size / median / bandwidth:>6.0f}%"
            if per:
                rate = f"{median / per * 1e6:>9.2f}"
            lines.append(f"  {_label(bench):<26}{median * 1e3:>12.2f}{ratio:>10}{rate}")
    return "\n".join(lines)


def main(argv=()):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        cmd = [sys.executable, "-m", "pytest", HERE, "-q", "-p", "no:cacheprovider",
               f"--benchmark-json={out}", "--benchmark-disable-gc", *argv]
        facts = machine_facts()
        print(format_header(facts), flush=True)
        print("running the bench suite (pytest-benchmark)...", flush=True)
        run = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
        if run.returncode != 0 or not os.path.exists(out):
            print(run.stdout[-20000:], run.stderr[-5000:], sep="\n")
            return run.returncode or 1
        with open(out) as f:
            report = json.load(f)
    print(format_tables(report, facts["bandwidth"]))
    print("\n'x ours': time / our time (higher = ours faster). GB/s: input bytes / time; % bw: of the"
          " read bandwidth above.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
