"""Runs the workflows over several seeds and writes the report: every paper claim with a computed
verdict, one table and one figure per workflow (docs/results.md by default for a full run).

Each (task, seed) writes its own ``results.json`` under ``out_dir/<task>/seed_<k>/``; a finished
one is kept when the command is started again, so a long reproduction can be stopped and resumed.
``results.json`` beside the report gathers the per-seed values of every task and the claim rows."""
import dataclasses
import json
import os
import time

from .common import SHARED_FIELDS, format_value
from .runner import Task, finished_results, run_tasks, task_config

__all__ = ["TASKS", "reproduce", "settings_line"]

# The runs of a reproduction: information on the real and the generated sequences, structured on
# the network trained elsewhere and on the residual net trained here.
TASKS = (
    Task("magnitude", "magnitude", {}),
    Task("region", "region", {}),
    Task("information-watch", "information", {"data": "watch"}),
    Task("information-clips", "information", {"data": "clips"}),
    Task("taylor", "taylor", {}),
    Task("single-shot", "single-shot", {}),
    Task("sparse", "sparse", {}),
    Task("structured", "structured", {"model": "ccexam"}),
    Task("structured-resnet", "structured", {"model": "resnet"}),
)

def settings_line(config):
    """The settings a run used: every workflow field, with the ones --quick changed marked."""
    fields = [f.name for f in dataclasses.fields(config) if f.name not in SHARED_FIELDS]
    shown = ", ".join(f"{name}={format_value(getattr(config, name))}" + ("*" if name in config.QUICK and config.quick_run else "")
                      for name in fields)
    return shown + (" (* = quick-run value)" if config.quick_run else "")


def default_report_path(quick, out_dir):
    """docs/results.md for a full run; a quick run's report stays beside its results."""
    return os.path.join(out_dir, "results.md") if quick else os.path.join("docs", "results.md")


def reproduce(*, quick=False, out_dir="runs/reproduce", seeds=(0,), jobs=1, only=None, tasks=TASKS,
              report=None, show_progress=True, echo=print):
    """Runs ``tasks`` (those whose key or workflow is in ``only``, when given) for every seed,
    keeping finished ones, writes the report (``report``, default :func:`default_report_path`) and
    the per-seed values beside it (``.json``); returns the claim rows."""
    from .report import CLAIMS_BEGIN, claim_table, claims_at_a_glance, replace_block, workflow_table, write_report
    chosen = [t for t in tasks if not only or t.key in only or t.workflow in only]
    start = time.perf_counter()
    run_tasks(chosen, seeds, quick=quick, out_dir=out_dir, jobs=jobs, show_progress=show_progress, echo=echo)
    per_task, walls, settings, spans = {}, {}, {}, []
    for task in chosen:
        payloads = [finished_results(task, seed, quick, out_dir) for seed in seeds]
        for p in payloads:   # each run's (start, end), from when it wrote its results and how long it took
            end = time.mktime(time.strptime(p["written"], "%Y-%m-%dT%H:%M:%S"))
            spans.append((end - p.get("wall_seconds", 0.0), end))
        per_task[task.key] = [p["results"] for p in payloads]
        walls[task.key] = [p.get("wall_seconds", 0.0) for p in payloads]
        settings[task.key] = settings_line(task_config(task, seeds[0], quick, out_dir))
    report = report or default_report_path(quick, out_dir)
    figures = os.path.join(os.path.dirname(report) or ".", "figures", "results")
    rows = write_report(report, per_task, chosen, settings=settings, wall_seconds=walls, seeds=list(seeds),
                        quick=quick, figures_dir=figures,
                        span_seconds=max(e for _, e in spans) - min(b for b, _ in spans) if spans else None)
    gathered = os.path.splitext(report)[0] + ".json"   # beside the report: the per-seed values it rests on
    with open(gathered, "w") as f:
        json.dump({"seeds": list(seeds), "quick": quick, "per_seed": per_task, "wall_seconds": walls,
                   "claims": [{"claim": r.claim.claim, "task": r.claim.task, "ours": r.ours._asdict(),
                               "reference": r.reference._asdict(), "difference": r.difference._asdict(),
                               "bound": r.claim.bound, "p": r.p, "verdict": r.verdict} for r in rows]},
                  f, indent=1)
    from . import WORKFLOWS
    for task in chosen:
        echo("\n".join(workflow_table(task.key, WORKFLOWS[task.workflow], per_task[task.key])))
    echo("\n".join(claim_table(rows)))
    readme = os.path.join(os.path.dirname(os.path.abspath(report)), os.pardir, "README.md")
    if not quick and only is None and tasks is TASKS and os.path.exists(readme):
        with open(readme) as f:   # the README shows the same claim table as the report
            text = f.read()
        if CLAIMS_BEGIN in text:
            with open(readme, "w") as f:
                f.write(replace_block(text, claims_at_a_glance(rows, list(seeds))))
    echo(f"report: {report}, per-seed values: {gathered} and {out_dir}/<task>/seed_<k>/results.json; "
         f"wall time {time.perf_counter() - start:.0f} s")
    return rows
