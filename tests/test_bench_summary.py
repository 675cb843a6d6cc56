"""The bench summary names the CPU capability of our rows and flags a lower capability that ran
faster than the one the dispatcher picks."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import summary  # noqa: E402


def row(impl, median, capability=None):
    extra = {"capability": capability} if capability else {}
    return {"params": {"impl": impl}, "name": impl, "group": "g", "stats": {"median": median},
            "extra_info": extra}


def test_our_rows_show_their_capability():
    report = {"benchmarks": [row("ours", 1.0, "avx512"), row("ours avx2", 1.2, "avx2"),
                             row("torch", 3.0)]}
    table = summary.format_tables(report)
    assert "ours [avx512]" in table and "ours avx2" in table
    assert "!" not in table   # the picked capability is the fastest


def test_a_faster_lower_capability_is_flagged_beyond_noise():
    slower = {"benchmarks": [row("ours", 1.0, "avx512"), row("ours avx2", 0.9, "avx2"),
                             row("ours default", 0.97, "default")]}
    table = summary.format_tables(slower)
    assert "! 'ours avx2' is 1.11x faster than ours [avx512]" in table
    assert table.count("!") == 1   # 'ours default' is within the noise
