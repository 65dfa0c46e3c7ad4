"""Values of model keys that the model code and its config check (`config_checks.py`) share; light on purpose."""

ACTIVATION_CHECKPOINTING = ("none", "full", "selective")  # model.activation_checkpointing (models/blocks.py)
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
FP8_RECIPES = ("tensorwise", "rowwise", "rowwise_with_gw_hp")  # torchao's recipe names (models/fp8.py)
