"""Checkpoint trajectories without accuracies (issue 13 item 4): ``hts.trajectory`` and ``hts compare ckpt-100/
ckpt-200/ …`` (or a quoted pattern) on real checkpoints written by torch during a real (tiny) training run."""

from __future__ import annotations

import csv
import json
import logging
import math

import numpy as np
import pytest

import hts
from hts.cli import main
from hts.report.trajectory import expand_checkpoints, step_of

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib", reason="the trajectory page draws with matplotlib (the plot extra)")
from _report_helpers import check_page  # noqa: E402

STEPS = (0, 20, 100, 300)


@pytest.fixture(autouse=True)
def _restore_hts_logger():
    logger = logging.getLogger("hts")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small MLP trained with SGD on a fixed random regression task, a HF-Trainer-like folder per saved step
    (``checkpoint-N/pytorch_model.bin``, written by ``torch.save``)."""
    root = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest on a shared CI machine
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 96),
                              torch.nn.ReLU(), torch.nn.Linear(96, 32))
    x = torch.randn(256, 64)
    y = torch.randn(256, 32)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for step in range(max(STEPS) + 1):
        if step in STEPS:
            folder = root / f"checkpoint-{step}"
            folder.mkdir()
            torch.save(net.state_dict(), folder / "pytorch_model.bin")
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    torch.set_num_threads(threads)
    return root


def test_step_numbers_from_names(tmp_path):
    assert step_of("run/checkpoint-1500") == 1500
    assert step_of("run/checkpoint-1500/") == 1500
    assert step_of("checkpoint-1500/model.safetensors") == 1500
    assert step_of("ckpt_3.pt") == 3 and step_of("epoch12-step300.ckpt") == 300
    assert step_of("final.pt") is None
    for n in (1000, 200, 30):
        (tmp_path / f"ckpt-{n}").mkdir()
    assert [p.rsplit("-", 1)[1] for p in expand_checkpoints([str(tmp_path / "ckpt-*")])] == ["30", "200", "1000"]
    with pytest.raises(FileNotFoundError, match="matches no file"):
        expand_checkpoints([str(tmp_path / "nothing-*")])


def test_trajectory_of_real_checkpoints(run_dir, caplog):
    shuffled = [str(run_dir / f"checkpoint-{s}") for s in (100, 0, 300, 20)]
    traj = hts.trajectory(shuffled)
    assert traj.steps == list(STEPS)  # sorted by the step in the names
    assert [c["name"] for c in traj.checkpoints] == [f"checkpoint-{s}" for s in STEPS]
    for c in traj.checkpoints:  # every number is hts.analyze's on that checkpoint
        expected = hts.analyze(str(run_dir / c["name"]))
        for metric in ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm"):
            assert c[metric] == pytest.approx(expected.summary[metric], rel=1e-12), (c["name"], metric)
        assert c["layers_analysed"] == len(expected.analysed) == 3
        assert c["layers_alpha_below_2"] == sum(r["alpha"] < 2 for r in expected.analysed)
    assert list(traj.layers) == ["0", "2", "4"]
    last = hts.analyze(str(run_dir / "checkpoint-300"))
    assert [v[-1] for v in traj.layers.values()] == pytest.approx([r["alpha"] for r in last.analysed], rel=1e-12)
    # training moved the weights: the spectra differ between the first and the last step
    assert traj.checkpoints[0]["log_norm"] != pytest.approx(traj.checkpoints[-1]["log_norm"], rel=1e-3)
    assert traj.layer_table.shape == (3, 4)
    text = traj.format()
    assert "checkpoint-300" in text and "no accuracies" in text


def test_mean_alpha_below_two_is_flagged(tmp_path, caplog):
    rng = np.random.default_rng(0)
    for step, df in ((100, 8.0), (200, 3.0), (300, 1.2)):  # ever heavier tails: alpha falls below 2
        np.savez(tmp_path / f"ckpt_{step}.npz",
                 **{f"l{j}.weight": rng.standard_t(df, size=(300, 150)) for j in range(3)})
    with caplog.at_level("WARNING", logger="hts"):
        traj = hts.trajectory(str(tmp_path / "ckpt_*.npz"))
    alphas = [c["alpha"] for c in traj.checkpoints]
    assert alphas[0] > 2 and alphas[-1] < 2
    first_below = next(c for c in traj.checkpoints if c["alpha"] < 2)
    assert traj.flags[0].startswith(f"mean alpha falls below 2 at step {first_below['step']} ")
    assert any("falls below 2" in m for m in caplog.messages)
    assert "flag: mean alpha falls below 2" in traj.format()
    page = check_page(traj.to_html())
    data = json.loads(page.json_text)
    assert data["flags"] == traj.flags and [c["step"] for c in data["checkpoints"]] == [100, 200, 300]


def test_no_flag_and_layer_gaps(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "a.npz", **{"l0.weight": rng.normal(size=(200, 100)), "l1.weight": rng.normal(size=(200, 90))})
    np.savez(tmp_path / "b.npz", **{"l0.weight": rng.normal(size=(200, 100))})
    traj = hts.trajectory({"a": str(tmp_path / "a.npz"), "b": str(tmp_path / "b.npz")})
    assert traj.steps == [0, 1]  # no numbers in the names: the order given
    assert not any("falls below" in f for f in traj.flags)
    assert any("some steps only" in f for f in traj.flags)
    assert math.isnan(traj.layers["l1"][1])


def test_trajectory_errors(tmp_path):
    np.savez(tmp_path / "m.npz", w=np.random.default_rng(0).normal(size=(100, 50)))
    with pytest.raises(ValueError, match="at least two checkpoints"):
        hts.trajectory([str(tmp_path / "m.npz")])
    with pytest.raises(ValueError, match="step 5"):
        hts.trajectory([("a", str(tmp_path / "m.npz")), ("b", str(tmp_path / "m.npz"))], steps=[5, 5])
    with pytest.raises(TypeError, match="without a name"):
        hts.trajectory([{"w": np.ones((3, 3))}, {"w": np.ones((3, 3))}])


def test_cli_compare_checkpoints_without_accuracies(run_dir, tmp_path, capsys):
    out, table, data, fig = (tmp_path / "t.html", tmp_path / "t.csv", tmp_path / "t.json", tmp_path / "t.svg")
    rc = main(["compare", str(run_dir / "checkpoint-*"), "-o", str(out), "--csv", str(table),
               "--json", str(data), "--plot", str(fig)])
    assert rc == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert [ln.split()[0] for ln in lines[1:5]] == [str(s) for s in STEPS]
    assert f"wrote {out}, {table}, {data}, {fig}" in printed
    check_page(out.read_text(encoding="utf-8"))
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = hts.trajectory([str(run_dir / f"checkpoint-{s}") for s in STEPS])
    assert [float(r["alpha"]) for r in rows] == pytest.approx([c["alpha"] for c in expected.checkpoints],
                                                              rel=1e-12)
    assert json.loads(data.read_text())["layers"].keys() == expected.layers.keys()
    assert fig.read_text().count("<svg") == 1
    # explicit folders and --steps
    args = ["compare", *(str(run_dir / f"checkpoint-{s}") for s in STEPS[:2]), "--steps", "7,3"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines[1:3]] == [["3", "checkpoint-20"], ["7", "checkpoint-0"]]


def test_cli_trajectory_usage_errors(run_dir, capsys):
    one = str(run_dir / "checkpoint-0")
    with pytest.raises(SystemExit) as e:
        main(["compare", one])
    assert e.value.code == 2 and "at least two checkpoints" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["compare", one, str(run_dir / "checkpoint-20"), "--series", "x"])
    assert e.value.code == 2 and "--series needs accuracies" in capsys.readouterr().err
    assert main(["compare", str(run_dir / "nothing-*"), one]) == 1
    assert "matches no file" in capsys.readouterr().err


def test_alpha_by_layer_over_training_figure(run_dir):
    """The α-by-layer figure draws one line per checkpoint through that checkpoint's α of each layer (layers in
    model order, matched by name), early steps dark and late ones yellow, with the α = 2 and 6 bounds."""
    from hts.report.trajectory_plots import alpha_by_layer_over_steps, metrics_over_steps

    traj = hts.trajectory([str(run_dir / f"checkpoint-{s}") for s in STEPS])
    fig = alpha_by_layer_over_steps(traj)
    ax = fig.axes[0]
    curves = [ln for ln in ax.lines if len(ln.get_xdata()) == len(traj.layers)]
    assert len(curves) == len(STEPS)
    for k, line in enumerate(curves):
        assert list(line.get_xdata()) == list(range(len(traj.layers)))
        assert list(line.get_ydata()) == pytest.approx([traj.layers[n][k] for n in traj.layers], rel=1e-12)
        assert line.get_label() == f"step {STEPS[k]}"
    first, last = curves[0].get_color(), curves[-1].get_color()
    assert sum(first[:3]) < sum(last[:3])  # viridis: dark early, light late
    bounds = sorted(ln.get_ydata()[0] for ln in ax.lines if ln not in curves)
    assert bounds == [2.0, 6.0]
    panels = metrics_over_steps(traj).axes
    alpha_panel = next(a for a in panels if a.get_title() == "mean alpha")
    assert list(alpha_panel.lines[0].get_ydata()) == pytest.approx([c["alpha"] for c in traj.checkpoints])
    page = traj.to_html()
    assert "alpha by layer, one line per checkpoint" in page and page.count("<svg") >= 2


def test_trajectory_of_peft_adapter_checkpoints(peft_adapter, tmp_path):
    """HF Trainer + peft saves each checkpoint as an adapter folder: the trajectory follows the LoRA updates
    (rows ΔW = s·B·A), never the loose factors."""
    import shutil

    for step, r in ((100, 2), (200, 4)):
        case = peft_adapter("minilm", r=r, lora_alpha=8, target_modules=["query"])
        shutil.copytree(case.path, tmp_path / f"checkpoint-{step}")
    traj = hts.trajectory(str(tmp_path / "checkpoint-*"))
    assert traj.steps == [100, 200]
    assert list(traj.layers) == [f"encoder.layer.{i}.attention.self.query.lora_delta" for i in range(6)]
    for c, step in zip(traj.checkpoints, (100, 200)):
        assert c["alpha"] == pytest.approx(hts.analyze(tmp_path / f"checkpoint-{step}").summary["alpha"], rel=1e-12)
