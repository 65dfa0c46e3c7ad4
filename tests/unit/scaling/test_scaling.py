"""lmlab-scaling (issue 33): the laws it fits are the ones in the data, on synthetic points and on Chinchilla's."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, compose
from omegaconf import OmegaConf, open_dict

from lmlab.runs.validate import config_problems
from lmlab.scaling.cli import main
from lmlab.scaling.isoflop import fit_isoflops, fit_parabola
from lmlab.scaling.ladder import isoflop_steps, isoflop_width
from lmlab.scaling.law import Law, bootstrap, fit_law, interval
from lmlab.scaling.params import count_params

CHINCHILLA = Law(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al.'s published fit
EPOCH_CSV = ROOT.parent / "shared" / "data" / "scaling" / "chinchilla_epoch_extracted.csv"


def noisy_grid(law: Law, seed: int = 0, sizes: int = 20, noise: float = 0.01):
    """Losses of `law` on a sizes × sizes grid of N in [1e6, 1e11] and D in [1e8, 1e13], times 1 + N(0, noise)."""
    n, d = (x.ravel() for x in np.meshgrid(np.geomspace(1e6, 1e11, sizes), np.geomspace(1e8, 1e13, sizes)))
    return n, d, law.loss(n, d) * (1 + np.random.default_rng(seed).normal(0, noise, n.size))


def test_known_law_is_recovered_within_3_percent_with_intervals_that_cover_it():
    n, d, loss = noisy_grid(CHINCHILLA)
    law, _ = fit_law(n, d, loss)
    laws = bootstrap(n, d, loss, law, samples=100, seed=0)
    for name in ("E", "alpha", "beta"):
        true, fitted = getattr(CHINCHILLA, name), getattr(law, name)
        assert abs(fitted / true - 1) < 0.03, (name, fitted, true)
        low, high = interval([getattr(b, name) for b in laws], 0.95)
        assert low <= true <= high, (name, low, high, true)


def epoch_points() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epoch AI's points from Chinchilla's figure 4, D = FLOP / 6N, the 5 highest-loss runs left out as they do."""
    if not EPOCH_CSV.is_file():
        pytest.skip(f"{EPOCH_CSV} is absent")
    with open(EPOCH_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    n = np.array([float(r["Model Size"]) for r in rows])
    flops = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.argsort(loss)[: len(loss) - 5]
    return n[keep], flops[keep] / (6 * n[keep]), loss[keep]


def test_epoch_ai_replication_of_chinchilla_is_reproduced_within_2_percent():
    law, _ = fit_law(*epoch_points())
    for name, published in (("E", 1.82), ("alpha", 0.348), ("beta", 0.366)):
        assert abs(getattr(law, name) / published - 1) < 0.02, (name, getattr(law, name), published)


def test_one_start_at_the_grid_corner_reaches_the_grids_fit():
    """Where Epoch AI's notebook, minimising the undivided objective, stopped at beta = 0.31 (law.py)."""
    corner = tuple(np.array([x]) for x in (0.0, 0.0, -1.0, 0.0, 0.0))
    law, _ = fit_law(*epoch_points(), grid=corner)
    assert abs(law.beta / 0.366 - 1) < 0.02, law


def test_isoflop_parabolas_find_the_laws_compute_optimal_exponent():
    """Noise-free IsoFLOP curves of a known law: their minima scale as N_opt ∝ C^(beta / (alpha + beta))."""
    budgets = np.array([1e18, 1e19, 1e20, 1e21])
    params = np.concatenate([np.geomspace(*CHINCHILLA.optimum(c)[0] * np.array([0.3, 3.0]), 9) for c in budgets])
    flops = np.repeat(budgets, 9)
    fit = fit_isoflops(params, flops, CHINCHILLA.loss(params, flops / (6 * params)))
    assert len(fit.parabolas) == 4
    assert fit.params_exponent == pytest.approx(CHINCHILLA.params_exponent, abs=0.01)
    assert fit.params_exponent + fit.tokens_exponent == pytest.approx(1.0, abs=1e-9)


def isoflop_csv(path: Path, law: Law, budgets: tuple[float, ...], noise: float = 0.0) -> Path:
    """IsoFLOP runs of `law`: 7 sizes a factor 1.5 apart around each budget's optimum, losses with `noise`
    (relative, seeded)."""
    params = np.concatenate([law.optimum(c)[0] * 1.5 ** np.arange(-3, 4) for c in budgets])
    flops = np.repeat(budgets, 7)
    loss = law.loss(params, flops / (6 * params)) * np.exp(np.random.default_rng(0).normal(0, noise, len(params)))
    return write_csv(path, params, flops / (6 * params), loss)


def test_the_backtest_holds_out_the_largest_budget(tmp_path, capsys):
    """On runs of a known law (1% noise) the law fitted below the largest budget predicts its best loss, with an
    interval that covers it; a ladder of one budget has nothing to hold out: one line, status 2."""
    csv_path = isoflop_csv(tmp_path / "runs.csv", CHINCHILLA, (1e18, 3e18, 1e19, 3e19), noise=0.01)
    main([str(csv_path), "--backtest", "--bootstrap", "50", "--out", str(tmp_path)])
    test = json.loads((tmp_path / "scaling.json").read_text())["backtest"]
    assert test["budget"] == pytest.approx(3e19, rel=0.01) and test["fitted_runs"] == 21
    best_possible = float(CHINCHILLA.loss(*CHINCHILLA.optimum(3e19)))
    assert test["predicted"] == pytest.approx(best_possible, rel=0.02)
    assert abs(test["error"]) < 0.03 and test["covered"] is True
    assert test["interval"][0] <= test["predicted"] <= test["interval"][1]
    assert "Backtest: fitted on the 21 runs below 3e+19 FLOPs" in capsys.readouterr().out
    assert (tmp_path / "backtest.png").stat().st_size > 10_000  # the law of the smaller budgets, the held-out runs
    one = isoflop_csv(tmp_path / "one.csv", CHINCHILLA, (1e18,))
    result = subprocess.run([sys.executable, "-m", "lmlab.scaling.cli", str(one), "--backtest"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr == (
        "error: --backtest needs runs at two compute budgets or more: it holds out the largest\n")


def test_a_budget_whose_parabola_has_its_vertex_outside_its_models_has_no_minimum():
    """The CPU ladder's 3e10 budget: best at the second smallest model, but the parabola through all seven runs
    (rising steeply to the right) put its vertex at N = 0.34; a minimum outside the models is no IsoFLOP minimum."""
    params = np.array([6368, 10704, 15808, 28320, 43904, 84288, 136960], dtype=float)
    loss = np.array([4.458, 4.410, 4.616, 4.869, 5.047, 5.070, 5.359])
    assert fit_parabola(3e10, params, loss) is None
    inside = fit_parabola(3e11, params, np.array([4.134, 3.889, 3.769, 3.657, 3.608, 3.736, 4.428]))
    assert params[0] < inside.optimal_params < params[-1]


@pytest.mark.parametrize("model", [
    {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": 48, "n_head": 2, "n_positions": 64},
    {"_target_": "transformers.GPT2Config", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_inner": 80,
     "n_positions": 32, "tie_word_embeddings": False},
    {"_target_": "transformers.LlamaConfig", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
     "num_key_value_heads": 2, "intermediate_size": 96, "tie_word_embeddings": True},
    {"_target_": "transformers.LlamaConfig", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
     "intermediate_size": 64, "attention_bias": True, "mlp_bias": True},
])
def test_parameter_counts_match_the_built_model(model):
    import transformers

    config = getattr(transformers, model["_target_"].split(".")[1])(
        vocab_size=100, **{k: v for k, v in model.items() if k != "_target_"})
    built = transformers.AutoModelForCausalLM.from_config(config)
    embeddings = {id(p) for m in built.modules() if isinstance(m, __import__("torch").nn.Embedding)
                  for p in m.parameters()} | {id(built.get_output_embeddings().weight)}
    total = sum(p.numel() for p in built.parameters())
    blocks = sum(p.numel() for p in built.parameters() if id(p) not in embeddings)
    assert count_params(model, 100, "total") == total
    assert count_params(model, 100, "non_embedding") == blocks
    assert count_params(config.to_dict(), 100, "total") == total  # as an export's config.json says it


def test_isoflop_steps_spend_the_budget():
    model = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": 32, "n_head": 2}
    steps = isoflop_steps(1e10, model, 64, 16)
    assert steps == round(1e10 / (6 * count_params(model, None, "non_embedding") * 64 * 16))
    assert isoflop_steps(1e10, model, 64, 16, global_batch_size=32) == round(steps / 2)
    total = isoflop_steps(1e10, model, 64, 16, vocab_size=512, count="total")  # the preset's scaling.params
    assert total == round(1e10 / (6 * count_params(model, 512, "total") * 64 * 16)) and total < steps


@pytest.mark.parametrize(("width", "lr"), [(8, 1.6e-2), (32, 4e-3), (64, 2e-3)])
def test_the_ladder_preset_trains_each_width_at_its_own_learning_rate(width, lr):
    """lr falls as 1/width from scaling.lr at scaling.lr_base_width (the preset's 4e-3 at 32: docs/scaling.md)."""
    cfg = compose(["experiment=isoflop_ladder", f"model.config.n_embd={width}"])
    assert cfg.optimizer.lr == pytest.approx(lr)
    assert compose(["experiment=isoflop_ladder", f"model.config.n_embd={width}", "scaling.lr_base_width=null"]
                   ).optimizer.lr == pytest.approx(4e-3)


@pytest.mark.parametrize("flops", [3e12, 1e13, 3e13])
def test_the_ladder_preset_derives_each_runs_width_from_its_tokens_per_param(flops):
    """The width whose N is nearest sqrt(C / 6r) (a brute-force search over even widths says which), the steps that
    spend C on it, so each run's D/N comes near r; more tokens per parameter, a smaller model."""
    widths = []
    for ratio in (8, 24, 72, 216):
        cfg = compose(["experiment=isoflop_ladder", f"scaling.flops={flops}", f"scaling.tokens_per_param={ratio}"])
        model = OmegaConf.to_container(cfg.model.config, resolve=True)
        n = lambda w, model=model: count_params({**model, "n_embd": w}, 512, "total")  # noqa: E731
        target = np.sqrt(flops / (6 * ratio))
        assert model["n_embd"] == min(range(2, 1024, 2), key=lambda w: abs(np.log(n(w) / target)))
        tokens = cfg.trainer.max_steps * 16 * 64
        assert abs(6 * n(model["n_embd"]) * tokens / flops - 1) < 0.01  # the budget, spent
        assert 0.7 < tokens / n(model["n_embd"]) / ratio < 1.4  # widths are even: near the ratio, not at it
        widths.append(model["n_embd"])
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 4


def test_a_llama_ladder_sets_hidden_size_in_multiples_of_its_heads():
    llama = OmegaConf.create({"_target_": "transformers.LlamaConfig", "num_hidden_layers": 4, "hidden_size": 0,
                              "num_attention_heads": 6, "intermediate_size": 512})
    width = isoflop_width(1e15, 20, 8192, "total", _parent_=llama)
    n = lambda w: count_params({**llama, "hidden_size": w}, 8192, "total")  # noqa: E731
    assert width % 6 == 0 and n(width - 6) < np.sqrt(1e15 / 120) < n(width + 6)


def test_a_bad_ladder_key_is_named():
    raised = "could not be resolved: ValueError raised while resolving interpolation:"
    cfg = compose(["experiment=isoflop_ladder", "scaling.lr_base_width=0", "scaling.flops=-1",
                   "model.config.n_embd=32"])  # a width set on the command line needs no ratio
    problems = _problems(cfg)
    assert f"optimizer.lr {raised} scaling.lr_base_width=0 must be a positive whole number of hidden units" in problems
    assert f"trainer.max_steps {raised} scaling.flops=-1 must be a positive number of FLOPs (e.g. 1e17)" in problems
    problems = _problems(compose(["experiment=isoflop_ladder", "scaling.tokens_per_param=0"]))
    assert (f"model.config.n_embd {raised} scaling.tokens_per_param=0 must be a positive number of tokens per "
            "parameter (e.g. 20)") in problems


def _problems(cfg) -> list[str]:
    with open_dict(cfg):
        del cfg["hydra"]
    return config_problems(cfg)


def write_csv(path: Path, n: np.ndarray, d: np.ndarray, loss: np.ndarray) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([("params", "tokens", "loss"), *zip(n, d, loss, strict=True)])
    return path


def test_cli_on_a_csv_writes_the_fit_and_a_budget_plan(tmp_path, capsys):
    n, d, loss = noisy_grid(CHINCHILLA, sizes=8)
    main([str(write_csv(tmp_path / "runs.csv", n, d, loss)), "--budget", "1e21", "--bootstrap", "20",
          "--out", str(tmp_path / "out")])
    result = json.loads((tmp_path / "out" / "scaling.json").read_text())
    assert (tmp_path / "out" / "scaling.png").stat().st_size > 10_000
    assert result["points"] == 64 and result["approach3"]["bootstrap"] == 20
    plan = result["budget"]
    assert plan["params"] * plan["tokens"] * 6 == pytest.approx(1e21)
    assert plan["loss_interval"][0] <= plan["loss"] <= plan["loss_interval"][1]
    assert "nearest_run" not in plan  # a CSV has no ladder
    assert "bootstrap 20/20" in capsys.readouterr().err


def fake_run(run_dir: Path, width: int, flops: float, loss: float, tokens_per_step: int = 1024,
             count: str | None = None, ratio: float | None = None) -> None:
    """What a finished run of conf/experiment/isoflop_ladder.yaml leaves that lmlab-scaling reads (`count`: the
    preset's scaling.params; None: a ladder of before it had one, non-embedding; `ratio`: the run's width came
    from scaling.tokens_per_param, else from the command line)."""
    run_dir.mkdir(parents=True)
    model = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": width, "n_head": 2}
    steps = isoflop_steps(flops, model, 64, tokens_per_step // 64, vocab_size=512, count=count or "non_embedding")
    scaling = {"flops": flops, **({"params": count} if count else {}), **({"tokens_per_param": ratio} if ratio else {})}
    size = f"scaling.tokens_per_param={ratio}" if ratio else f"model.config.n_embd={width}"
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": {"config": model}, "data": {"vocab_size": 512},
                                                          "scaling": scaling,
                                                          "monitor": {"metric": "val/loss", "mode": "min"}}))
    (run_dir / "overrides.yaml").write_text(yaml.safe_dump(
        ["experiment=isoflop_ladder", size, f"scaling.flops={flops}", "paths.root_dir=/x"]))
    (run_dir / "summary.json").write_text(json.dumps({"monitor": "val/loss", "final": loss, "global_step": steps,
                                                      "tokens_seen": steps * tokens_per_step}))


def test_cli_on_a_ladder_sweep_proposes_its_nearest_model_with_the_budgets_steps(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    job = 0
    for flops in (1e10, 3e10, 1e11, 3e11):
        for width in (16, 24, 32, 48, 64):
            model = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": width}
            n = count_params(model, None, "non_embedding")
            fake_run(sweep / str(job), width, flops, float(CHINCHILLA.loss(n, flops / (6 * n))))
            job += 1
    (sweep / str(job)).mkdir()  # a job that has written nothing yet
    main([str(sweep), "--budget", "3e11", "--bootstrap", "0"])
    result = json.loads((sweep / "scaling.json").read_text())
    assert result["points"] == 20 and result["params"] == "non_embedding"
    assert len(result["approach2"]["budgets"]) == 4  # grouped by the runs' own scaling.flops
    plan = result["budget"]
    n = plan["nearest_run"]["params"]
    assert abs(np.log(n / plan["params"])) == min(abs(np.log(p["params"] / plan["params"])) for p in result["runs"])
    width = [o for o in plan["overrides"] if o.startswith("model.config.n_embd=")][0].split("=")[1]
    model = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_embd": int(width), "n_head": 2}
    steps = int(plan["overrides"][-1].removeprefix("trainer.max_steps="))
    assert abs(steps - isoflop_steps(3e11, model, 64, 16)) <= 1  # the budget's steps, as the preset derives them
    assert plan["overrides"][:3] == ["experiment=isoflop_ladder", f"model.config.n_embd={width}", "scaling.flops=3e+11"]
    assert "paths.root_dir=/x" not in plan["overrides"]
    assert "left out" in capsys.readouterr().err


def test_the_plan_for_a_ladder_of_ratios_composes_into_the_compute_optimal_model(tmp_path):
    """Runs whose width the preset derived from scaling.tokens_per_param: the plan gives the budget and the law's
    D/N, and the preset, composed with exactly those overrides, builds the model nearest the law's N."""
    sweep = tmp_path / "sweep"
    for job, (flops, ratio) in enumerate((f, r) for f in (1e12, 3e12, 1e13) for r in (8, 24, 72, 216)):
        model = {"_target_": "transformers.GPT2Config", "n_layer": 2, "n_head": 2, "n_positions": 64}
        width = isoflop_width(flops, ratio, 512, "total", _parent_=OmegaConf.create(model))
        n = count_params({**model, "n_embd": width}, 512, "total")
        fake_run(sweep / str(job), width, flops, float(CHINCHILLA.loss(n, flops / (6 * n))), count="total",
                 ratio=ratio)
    main([str(sweep), "--budget", "1e14", "--bootstrap", "0"])
    plan = json.loads((sweep / "scaling.json").read_text())["budget"]
    ratio = plan["tokens"] / plan["params"]
    assert plan["overrides"][-2:] == ["scaling.flops=1e+14", f"scaling.tokens_per_param={ratio:.3g}"]
    assert not any(o.startswith(("trainer.max_steps=", "paths.root_dir=")) for o in plan["overrides"])
    cfg = compose(plan["overrides"])
    model = OmegaConf.to_container(cfg.model.config, resolve=True)
    n = lambda w: count_params({**model, "n_embd": w}, 512, "total")  # noqa: E731
    assert n(model["n_embd"] - 2) < plan["params"] * 1.01 and n(model["n_embd"] + 2) > plan["params"] * 0.99


def test_the_fit_counts_parameters_as_the_ladder_spent_its_budgets(tmp_path, capsys):
    """A ladder run with scaling.params=total is fitted on total parameters unless --params says otherwise, so
    that its C = 6ND is the budget it was given; ladders counted differently are refused together."""
    sweep = tmp_path / "total"
    for job, (flops, width) in enumerate((f, w) for f in (1e11, 3e11) for w in (16, 24, 32, 48)):
        fake_run(sweep / str(job), width, flops, 5.0 - 0.1 * job, count="total")
    main([str(sweep), "--bootstrap", "0"])
    result = json.loads((sweep / "scaling.json").read_text())
    assert result["params"] == "total"
    assert all(r["flops"] == pytest.approx(r["budget"], rel=0.01) for r in result["runs"])  # steps are rounded
    main([str(sweep), "--bootstrap", "0", "--params", "non_embedding", "--out", str(tmp_path / "ne")])
    assert json.loads((tmp_path / "ne" / "scaling.json").read_text())["params"] == "non_embedding"
    fake_run(tmp_path / "old" / "0", 16, 1e10, 5.0, count="non_embedding")
    with pytest.raises(SystemExit) as exit_:
        main([str(sweep), str(tmp_path / "old"), "--bootstrap", "0"])
    assert exit_.value.code == 2
    assert "counted their parameters differently (scaling.params: non_embedding, total)" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["missing.csv"], "does not exist"),
    (["bad.csv"], "expected the columns params,tokens,loss"),
    (["few.csv"], "needs at least 6"),
    (["few.csv", "--budget", "-1"], "--budget=-1.0: expected a positive number"),
    (["nan.csv"], "line 2: loss=nan must be a positive number"),
])
def test_bad_input_is_one_error_line_and_status_2(tmp_path, args, message):
    (tmp_path / "bad.csv").write_text("n,d,l\n1,2,3\n")
    write_csv(tmp_path / "few.csv", np.array([1e6, 1e7]), np.array([1e9, 1e9]), np.array([3.0, 2.9]))
    (tmp_path / "nan.csv").write_text("params,tokens,loss\n1e6,1e9,nan\n")
    result = subprocess.run([sys.executable, "-m", "lmlab.scaling.cli", *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "scaling.json").exists()


def test_the_command_imports_neither_torch_nor_lightning():
    probe = ("import sys, lmlab.scaling.cli, lmlab.scaling.plot; "
             "print(sorted({'torch', 'lightning', 'transformers'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_bootstrap_refit_that_runs_a_coefficient_beyond_a_float_is_left_out(monkeypatch):
    """Seen on the 14 runs of the CPU ladder's two smaller budgets: a resample's L-BFGS ended at log A ≈ 1e3, and
    exp(a) raised OverflowError instead of that resample being dropped like one that diverged to inf."""
    from types import SimpleNamespace

    import lmlab.scaling.law as law_module

    ends = iter([np.array([1e3, 1.0, 0.0, 0.3, 0.3]), np.array([5.0, 6.0, 0.5, 0.3, 0.3])])
    monkeypatch.setattr(law_module, "_lbfgs", lambda start, data, delta: SimpleNamespace(x=next(ends), fun=0.0))
    n, d, loss = noisy_grid(CHINCHILLA, sizes=3)
    laws = bootstrap(n, d, loss, CHINCHILLA, samples=2)
    assert [law.A for law in laws] == pytest.approx([np.exp(5.0)])


def test_a_law_without_a_minimum_has_no_optimum_and_intervals_skip_it():
    """A bootstrap resample of few runs can fit an exponent <= 0 (seen on a real 10-run sweep): no optimum."""
    flat = Law(E=1.0, A=10.0, B=10.0, alpha=-0.1, beta=0.3)
    assert all(np.isnan(x) for x in flat.optimum(1e20))
    assert interval([1.0, 2.0, float("nan"), 3.0], 0.5) == pytest.approx((1.5, 2.5))
