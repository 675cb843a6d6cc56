"""The model-zoo table of docs/model_zoo.md: every model of tests/test_model_zoo.py (slow ones
included) pruned 50 % through Torch-Pruning with ours and with Torch-Pruning's Taylor on the same
batches; MACs and parameters before and after, and which importances worked. Run it in the zoo
venv (.ci/check_zoo.sh makes one): ``.venv-zoo/bin/python bench/model_zoo_table.py``."""
import copy
import os
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
import test_model_zoo as zoo  # noqa: E402


def main():
    tp = zoo.tp
    rows = ["| model | MACs before | params before | MACs after (ours / TP Taylor) | params after (ours / TP Taylor) "
            "| same channels | seconds |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, (build, size, _) in zoo.MODELS.items():
        start = time.perf_counter()
        torch.manual_seed(0)
        model = build().eval()
        example = torch.randn(1, 3, size, size)
        g = torch.Generator().manual_seed(1)
        batches = [(torch.randn(2, 3, size, size, generator=g), torch.randint(0, 1000, (2,), generator=g))
                   for _ in range(2)]
        macs, params = tp.utils.count_ops_and_params(model, example)
        results = {}
        for label, importance in (("ours", zoo.TaylorChannelImportance("fisher")),
                                  ("tp", tp.importance.GroupTaylorImportance())):
            try:
                pruned = zoo.prune(copy.deepcopy(model), importance, example, batches)
                with torch.no_grad():
                    pruned(example)
                results[label] = (tp.utils.count_ops_and_params(pruned, example), zoo.out_channels(pruned))
            except Exception as error:   # noqa: BLE001 - the table records what fails
                results[label] = (None, f"{type(error).__name__}: {str(error).splitlines()[0][:60]}")
                traceback.print_exc(limit=1)
        cells = []
        for i in (0, 1):
            cells.append(" / ".join(f"{results[k][0][i] / 1e6:.1f}M" if results[k][0] else "fails" for k in ("ours", "tp")))
        same = ("yes" if results["ours"][1] == results["tp"][1] else "NO") if all(results[k][0] for k in results) \
            else ("both fail" if not any(results[k][0] for k in results) else "one fails")
        rows.append(f"| {name} | {macs / 1e6:.1f}M | {params / 1e6:.2f}M | {cells[0]} | {cells[1]} | {same} | "
                    f"{time.perf_counter() - start:.0f} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
