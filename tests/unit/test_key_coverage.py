"""Issue 32: every typed key of every config group is checked before the run directory is touched.

Each option of each group (conf/<group>/<option>.yaml) and the eval config are composed the way a user names them
(`lmlab-train <group>=<option>`); every leaf holding a bool, int, float or a one-word string (an enumeration) must
be covered by a key check (each feature's `KEYS`, the run's own, `lmlab.sweeps.config_checks.KEYS` for the
sweeper and launchers) or be in ALLOWED below, with the reason it needs none. A new key without a check fails here.
"""

from __future__ import annotations

import functools
import re
from fnmatch import fnmatch

import pytest
from conftest import compose, run_cli
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf, open_dict

from lmlab.config import config_dir
from lmlab.runs.validate import EVAL_CHECKS, checks_for, config_problems
from lmlab.sweeps import config_checks as sweep_checks
from lmlab.utils.key_checks import KeyChecks, expand

# Keys that need no check of their own: pattern → why.
ALLOWED = {
    "*._target_": "a dotted class path, not a one-word value (the sweeper's and launchers' are checked importable: "
                  "sweep_problems, tested below)",
    "*name": "a name (run, sweep, experiment, task, model, tracker run or project, hub config): free-form",
    ("logger.wandb.project", "logger.wandb.group", "logger.wandb.job_type", "logger.*.tags.*"):
        "a tracker's project, group, job type or tags: free-form names",
    "*.monitor": "a logged metric's name: free-form, known only once the run logs it",
    "*_column": "a column of the user's data: the data module refuses a missing one in one line while "
                "check_config/prepare_data reads the data, before the launch writes into the run directory",
    "data.source.*split*": "a split of a hub data set: passed to `datasets`, which refuses an unknown one when "
                           "check_config fingerprints the source (HubSplits.load), before the run directory",
    "*.pretrained": "a hub name or directory: check_config loads its config (errors.not_loadable: one line)",
    "*.tokenizer": "a hub name or directory, loaded as model.pretrained is",
    "scaling.*": "read only by the resolvers of trainer.max_steps and optimizer.lr (scaling/ladder.py:isoflop_steps, "
                 "width_scaled_lr), whose ValueError config_problems reports as `<key> could not be resolved`",
}
# Not typed keys of the run: Hydra's own (the sweeper and launchers are checked: lmlab.sweeps.config_checks).
HYDRA_OWN = re.compile(r"hydra\.(?!sweeper\.|launcher\.)")
ENUM_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]*")  # one word: an option name, not a path, URI or prose


def allowed(key: str) -> bool:
    return any(fnmatch(key, pattern) for patterns in ALLOWED
               for pattern in (patterns if isinstance(patterns, tuple) else (patterns,)))


def choices() -> list[tuple[str, list[str]]]:
    """(config name, overrides): the default config, each option of each group, the eval config."""
    root = config_dir()
    found = [("train", [])]
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        group = folder.relative_to(root).as_posix()
        found += [("train", [f"{group}={option.stem}"]) for option in sorted(folder.glob("*.yaml"))]
    return [*found, ("eval", [])]


@functools.cache
def composed() -> list[tuple[str, tuple[str, ...], DictConfig]]:
    """Each of `choices()` composed once: (config name, overrides, config)."""
    return [(name, tuple(overrides), compose(overrides, name)) for name, overrides in choices()]


def leaves(node: DictConfig, prefix: str = "") -> list[str]:
    """The leaf keys under `node` (a list is a leaf)."""
    keys = []
    for key in node:
        child = node._get_node(key)
        keys += leaves(child, f"{prefix}{key}.") if OmegaConf.is_dict(child) else [f"{prefix}{key}"]
    return keys


def typed(value: object) -> bool:
    """A value a check can refuse: a bool, a number or a one-word string."""
    return isinstance(value, bool | int | float) or (isinstance(value, str) and bool(ENUM_LIKE.fullmatch(value)))


def checks(config_name: str, cfg: DictConfig) -> KeyChecks:
    """The checks the command makes on `cfg`, with the sweep's (`lmlab-train -m`)."""
    if config_name == "eval":
        return EVAL_CHECKS
    return {**checks_for(cfg), **expand(sweep_checks.KEYS, cfg)}


def alias_of(cfg: DictConfig, key: str) -> str | None:
    """The key that `key` only repeats (`${resume}`, `${oc.select:data.document_masking,false}`)."""
    node = cfg
    for part in key.split("."):
        node = node._get_node(part)
    raw = node._value()
    match = re.fullmatch(r"\$\{(?:oc\.select:)?([\w.]+)(?:,[^}]*)?\}", str(raw))
    return match.group(1) if match else None


def uncovered(config_name: str, overrides: tuple[str, ...], cfg: DictConfig) -> dict[str, str]:
    """Each typed leaf of the composed config that no check covers and ALLOWED does not name → an example."""
    known = checks(config_name, cfg)
    found = {}
    for key in leaves(cfg):
        if HYDRA_OWN.match(key) or key in known or allowed(key):
            continue
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False, throw_on_missing=False)
        if not typed(value) or alias_of(cfg, key) in known:
            continue
        found[key] = f"{key}={value!r} ({' '.join(overrides) or config_name})"
    return found


def test_every_typed_key_of_every_option_is_checked_or_allowed():
    missing = {}
    for name, overrides, cfg in composed():
        missing = {**uncovered(name, overrides, cfg), **missing}
    assert missing == {}, "\n".join(sorted(missing.values()))


# The keys issue 32 added checks for: a wrong-typed value of each is refused, naming the key.
NEWLY_CHECKED = [
    "resume", "monitor.mode", "trainer.devices", "trainer.num_nodes", "trainer.check_val_every_n_epoch",
    "trainer.num_sanity_val_steps", "trainer.deterministic", "trainer.enable_progress_bar",
    "trainer.strategy.find_unused_parameters", "trainer.strategy.gradient_as_bucket_view",
    "trainer.strategy.sharded_checkpoint", "trainer.strategy.cpu_offload",
    "callbacks.model_checkpoint.mode", "callbacks.model_checkpoint.save_top_k", "callbacks.model_checkpoint.save_last",
    "callbacks.model_checkpoint.auto_insert_metric_name", "callbacks.last_checkpoint.enable_version_counter",
    "callbacks.early_stopping.min_delta", "callbacks.early_stopping.verbose",
    "callbacks.early_stopping.check_on_train_epoch_end", "callbacks.early_stopping.mode",
    "callbacks.lr_monitor.logging_interval", "callbacks.progress_bar.enabled", "callbacks.samples.max_new_tokens",
    "callbacks.samples.num_samples", "callbacks.speed_monitor.peak_flops", "callbacks.run_summary.mode",
    "callbacks.downstream_eval.num_fewshot", "callbacks.downstream_eval.limit", "callbacks.downstream_eval.batch_size",
    "model.fp8", "model.fused_activations", "model.mup", "model.mup_base_width", "model.pad_vocab_multiple",
    "model.attn_implementation", "model.config.hidden_act", "model.config.rms_norm_eps", "model.config.rope_theta",
    "model.config.attention_bias", "model.config.mlp_bias", "model.config.tie_word_embeddings",
    "model.config.attention_dropout", "model.config.attn_pdrop", "model.config.embd_pdrop", "model.config.resid_pdrop",
    "model.config.hidden_dropout_prob", "model.config.attention_probs_dropout_prob",
    "peft.r", "peft.lora_alpha", "peft.lora_dropout", "peft.bias",
    "data._convert_", "data.packing", "data.generation_examples", "data.max_prompt_length",
    "data.tokenizer_train_chars", "data.samples_per_epoch", "data.cache_bytes", "data.shuffle_window", "data.retries",
    "data.backoff_s", "data.sources.code.weight", "data.sources.code.source.validation_fraction",
    "data.source.max_chars", "data.source.min_length", "data.source.max_length", "data.source.seed",
    "data.source.streaming", "data.source.train_examples", "data.source.validation_examples",
    "optimizer.fused", "scheduler.min_lr_ratio",
    "task.module.simpo_gamma", "task.module.disable_dropout", "task.module.fused_loss", "task.module.whole_word_mask",
    "task.module.mlm_probability", "task.module.mask_replace_prob", "task.module.random_replace_prob",
    "task.module.max_new_tokens", "task.module.seed",
    "logger.wandb.offline", "logger.wandb.log_model", "logger.mlflow.log_hf_export",
    "logger.tensorboard.default_hp_metric",
    "hydra.sweeper.n_jobs", "hydra.sweeper.max_failure_rate", "hydra.sweeper.sampler.seed",
    "hydra.sweeper.sampler.n_startup_trials", "hydra.sweeper.pruner.n_startup_trials",
    "hydra.sweeper.pruner.n_warmup_steps", "hydra.launcher.n_jobs", "hydra.launcher.prefer", "hydra.launcher.verbose",
    "hydra.launcher.batch_size", "hydra.launcher.mmap_mode", "hydra.launcher.gpus", "hydra.launcher.mem_gb",
    "hydra.launcher.timeout_min", "hydra.launcher.max_num_timeout",
    "eval:num_fewshot", "eval:limit", "eval:bootstrap_iters",
]
# Keys a launcher's schema types (OmegaConf refuses a wrong type at compose: one line from check_overrides):
# an out-of-range value instead.
OUT_OF_RANGE = {"hydra.launcher.n_jobs": 0, "hydra.launcher.verbose": -1, "hydra.launcher.mem_gb": 0,
                "hydra.launcher.timeout_min": 0, "hydra.launcher.max_num_timeout": -1}


@functools.cache
def holders() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each leaf key → the first (config name, overrides) of `choices()` whose composed config holds it."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, overrides, cfg in composed():
        for key in leaves(cfg):
            found.setdefault(key, (name, overrides))
    return found


@pytest.mark.parametrize("key", NEWLY_CHECKED)
def test_a_wrong_typed_value_of_each_newly_checked_key_is_refused_naming_it(key):
    name, key = key.split(":") if ":" in key else ("train", key)
    bad = OUT_OF_RANGE.get(key, "abc")
    config_name, overrides = ("eval", ()) if name == "eval" else holders()[key]
    cfg = compose([*overrides, f"{key}={bad}"], config_name)
    if key.startswith("hydra."):
        problems = sweep_checks.sweep_problems(cfg)
    else:
        with open_dict(cfg):
            del cfg["hydra"]
        problems = config_problems(cfg, EVAL_CHECKS if name == "eval" else None)
    assert any(p.startswith(f"{key}={bad!r} ") for p in problems), (key, problems)


def test_a_wrong_type_of_a_launcher_schema_key_is_refused_at_compose():
    with pytest.raises(ConfigCompositionException, match="hydra.launcher.mem_gb=abc"):
        compose(["hydra/launcher=slurm", "hydra.launcher.mem_gb=abc"])


@pytest.mark.parametrize(("overrides", "says"), [
    (["hydra/launcher=parallel", "hydra.launcher._target_=hydra_plugins.hydra_joblib_launcher.JoblibLaunchr"],
     "hydra.launcher._target_='hydra_plugins.hydra_joblib_launcher.JoblibLaunchr' names nothing importable"),
    (["hydra/sweeper=optuna", "hydra.sweeper.max_failure_rate=2"],
     "hydra.sweeper.max_failure_rate=2 must be a fraction of the trials between 0 and 1"),
])
def test_a_bad_sweeper_or_launcher_key_is_one_line_exit_2_before_any_directory(overrides, says, tmp_path):
    result = run_cli(["-m", "debug=fast", *overrides, f"paths.root_dir={tmp_path}"], cwd=tmp_path, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {says}"), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("module", "args", "says"), [
    ("lmlab.scaling.cli", ["runs", "--budget", "abc"], "argument --budget: invalid float value: 'abc'"),
    ("lmlab.upload_data", ["file:///nowhere", "data.shard_bytes=abc"],
     "data.shard_bytes='abc' must be a positive number of bytes"),
])
def test_the_other_commands_refuse_a_wrong_typed_value_in_one_line(module, args, says, tmp_path):
    result = run_cli(args, cwd=tmp_path, module=module, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {says}"), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
