"""The model-zoo table of docs/model_zoo.md: every model of tests/test_model_zoo.py (slow ones
included) pruned 50 % through Torch-Pruning with ours and with Torch-Pruning's Taylor (sized to
the root, as the test compares) on the same batches; MACs and parameters before and after, and
which importances worked. Run it in the zoo
venv (.ci/check_zoo.sh makes one): ``.venv-zoo/bin/python bench/model_zoo_table.py [names]``."""
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
    for name in [n for n in zoo.MODELS if not sys.argv[1:] or any(a in n for a in sys.argv[1:])]:
        start = time.perf_counter()
        model, example, batches = zoo.setup(name)
        macs, params = tp.utils.count_ops_and_params(model, example)
        results = {}
        for label, importance in (("ours", zoo.TaylorChannelImportance("fisher")),
                                  ("tp", zoo.RootSizedTaylor())):
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
        if not all(results[k][0] for k in results):
            same = "both fail" if not any(results[k][0] for k in results) else "one fails"
        elif name in zoo.CHOICE_DEPENDENT:
            same = "by choice (see above)"
        else:
            same = "yes" if results["ours"][1] == results["tp"][1] else "NO"
        rows.append(f"| {name} | {macs / 1e6:.1f}M | {params / 1e6:.2f}M | {cells[0]} | {cells[1]} | {same} | "
                    f"{time.perf_counter() - start:.0f} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
