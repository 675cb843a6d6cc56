"""Runs (task, seed) pairs of the workflows, in parallel processes when asked, each with its share
of the CPU threads; a pair whose ``results.json`` is already there, written by the same settings,
is kept and not run again, so an interrupted reproduction picks up where it stopped."""
import concurrent.futures
import json
import multiprocessing
import os
import time
from typing import Dict, NamedTuple

__all__ = ["Task", "seed_dir", "finished_results", "run_tasks"]


class Task(NamedTuple):
    key: str                 # the folder and the name in the report, e.g. "information-watch"
    workflow: str            # a name of WORKFLOWS
    overrides: Dict          # settings beside the workflow's full (or quick) ones


def seed_dir(out_dir, task, seed):
    return os.path.join(out_dir, task.key, f"seed_{seed}")


def _config(task, seed, quick, out_dir):
    from . import WORKFLOWS
    config_class = WORKFLOWS[task.workflow].config
    settings = dict(task.overrides, seed=seed, show_progress=False, out_dir=seed_dir(out_dir, task, seed))
    return config_class.quick(**settings) if quick else config_class(**settings)


def _signature(config):
    """The settings that decide a run's numbers (not where it writes or whether it shows bars)."""
    from .common import _jsonable
    return {k: v for k, v in _jsonable(config).items() if k not in ("out_dir", "show_progress")}


def finished_results(task, seed, quick, out_dir):
    """The stored results of (task, seed) when they were written by these settings, else None."""
    path = os.path.join(seed_dir(out_dir, task, seed), "results.json")
    try:
        with open(path) as f:
            payload = json.load(f)
    except (OSError, ValueError):
        return None
    stored = {k: v for k, v in payload.get("config", {}).items() if k not in ("out_dir", "show_progress")}
    return payload if stored == _signature(_config(task, seed, quick, out_dir)) else None


def _run_one(task, seed, quick, out_dir, threads):
    """Runs one (task, seed) in this process; returns its wall time. The seconds are added to the
    results.json the workflow wrote, which is replaced whole (never left half-written)."""
    import torch
    from . import WORKFLOWS
    torch.set_num_threads(threads)
    config = _config(task, seed, quick, out_dir)
    start = time.perf_counter()
    WORKFLOWS[task.workflow].run(config)
    seconds = time.perf_counter() - start
    path = os.path.join(config.out_dir, "results.json")
    with open(path) as f:
        payload = json.load(f)
    payload["wall_seconds"] = round(seconds, 1)
    with open(path + ".tmp", "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(path + ".tmp", path)
    return seconds


def run_tasks(tasks, seeds, *, quick, out_dir, jobs=1, show_progress=True, echo=print):
    """Runs every (task, seed) not yet finished, ``jobs`` at a time (each process with
    ``cpu_count // jobs`` threads); a progress bar names the pairs running and the ETA, and
    ``echo`` says each one done (pass ``tqdm.write`` to print above the bar). Returns
    ``{(task key, seed): wall seconds}`` of the pairs run now."""
    from tqdm.auto import tqdm
    pending = [(task, seed) for task in tasks for seed in seeds
               if finished_results(task, seed, quick, out_dir) is None]
    kept = len(tasks) * len(seeds) - len(pending)
    if kept:
        echo(f"{kept} (workflow, seed) run(s) already finished with these settings: kept")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    bar = tqdm(total=len(pending), desc="reproduce", disable=not show_progress, dynamic_ncols=True)
    running, walls = {}, {}

    def show():
        bar.set_postfix_str(", ".join(f"{t.key} seed {s}" for t, s in running.values()))

    if jobs == 1:
        for task, seed in pending:
            running[0] = (task, seed)
            show()
            walls[(task.key, seed)] = _run_one(task, seed, quick, out_dir, threads)
            echo(f"done: {task.key} seed {seed} ({walls[(task.key, seed)]:.0f} s)")
            bar.update(1)
        bar.close()
        return walls
    context = multiprocessing.get_context("spawn")   # fresh interpreters: no forked OpenMP state
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        queue = list(pending)
        try:
            while queue or running:
                while queue and len(running) < jobs:
                    task, seed = queue.pop(0)
                    running[pool.submit(_run_one, task, seed, quick, out_dir, threads)] = (task, seed)
                show()
                done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    task, seed = running.pop(future)
                    walls[(task.key, seed)] = future.result()
                    echo(f"done: {task.key} seed {seed} ({walls[(task.key, seed)]:.0f} s)")
                    bar.update(1)
        except BaseException:
            for future in running:
                future.cancel()
            raise
    bar.close()
    return walls


def task_config(task, seed, quick, out_dir):
    """The config a (task, seed) runs with (for the report's settings lines)."""
    return _config(task, seed, quick, out_dir)

