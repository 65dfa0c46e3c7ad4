"""conf/callbacks' keys, lmlab's callbacks' and Lightning's: each key's type and range. Light on purpose (no
Lightning import): `lmlab.runs.validate` checks them before anything runs."""

from __future__ import annotations

from lmlab.utils.key_checks import KeyChecks, Select, boolean, integer, one_of, optional_boolean, positive_number

# Keys that count steps, epochs or validations: positive integers (or null: off).
CALLBACK_INTERVALS = ("every_n_train_steps", "every_n_epochs", "patience", "refresh_rate", "window", "max_depth")
METRIC_MODES = ("min", "max")
CHECKPOINTS = ("model_checkpoint", "last_checkpoint")  # Lightning's ModelCheckpoint and lmlab's LastCheckpoint


# conf/callbacks' keys (lmlab's callbacks and Lightning's); intervals under any callback's name.
KEYS: KeyChecks = {
    **{f"callbacks.*.{key}": (lambda v: integer(v, 1, (None,)), "must be a positive integer (or null)")
       for key in CALLBACK_INTERVALS},
    **{f"callbacks.{name}.mode": one_of(METRIC_MODES) for name in (*CHECKPOINTS, "early_stopping", "run_summary")},
    **{f"callbacks.{name}.save_top_k": (lambda v: integer(v, -1), "must be an integer of at least -1 (-1: all)")
       for name in CHECKPOINTS},
    **{f"callbacks.{name}.save_last": (lambda v: v in (True, False, None, "link"), "must be true, false or link")
       for name in CHECKPOINTS},
    **{f"callbacks.{name}.{key}": (boolean, "must be true or false")
       for name in CHECKPOINTS for key in ("auto_insert_metric_name", "enable_version_counter")},
    "callbacks.downstream_eval.every_n_steps": (lambda v: integer(v, 1), "must be a positive integer"),
    "callbacks.early_stopping.min_delta": (lambda v: isinstance(v, int | float) and not isinstance(v, bool),
                                           "must be a number"),
    "callbacks.early_stopping.verbose": (boolean, "must be true or false"),
    "callbacks.early_stopping.check_on_train_epoch_end": (optional_boolean, "must be true or false (or null)"),
    "callbacks.lr_monitor.logging_interval": one_of(("step", "epoch", None)),
    "callbacks.progress_bar.enabled": (boolean, "must be true or false"),
    "callbacks.samples.max_new_tokens": (lambda v: integer(v, 1), "must be a positive number of tokens"),
    "callbacks.samples.num_samples": (lambda v: integer(v, 1), "must be a positive integer"),
    "callbacks.speed_monitor.peak_flops": (lambda v: v is None or positive_number(v),
                                           "must be a positive number of FLOP/s (or null: Lightning's table)"),
}


def problems(select: Select) -> list[str]:
    """No cross-field rules: each callback's keys stand alone."""
    return []
