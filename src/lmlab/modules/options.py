"""Values of objective and schedule keys that the modules and their config check (`config_checks.py`) share;
light on purpose (no torch, no transformers)."""

PREFERENCE_LOSSES = ("sigmoid", "hinge", "ipo", "simpo")  # task=dpo's loss_type (TRL's names; preference_losses.py)
REFERENCE_FREE_LOSSES = ("simpo",)  # those that use no reference model
WSD_SHAPES = ("linear", "cosine", "1-sqrt")  # scheduler=wsd's decay and warmup shapes (transformers'; wsd.py)
# transformers.SchedulerType's values (`get_scheduler`'s names), without importing transformers
# (tests/unit/modules/test_wsd.py keeps them equal to the installed transformers').
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
              "warmup_stable_decay", "greedy")
