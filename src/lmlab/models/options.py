"""Values of model keys that the model code and its config check (`config_checks.py`) share; light on purpose."""

ACTIVATION_CHECKPOINTING = ("none", "full", "selective")  # model.activation_checkpointing (models/blocks.py)
# torch.compile's modes (torch._inductor.list_mode_options(); tests/unit/models/test_options.py compares)
COMPILE_MODES = (None, "default", "lite", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
FP8_RECIPES = ("tensorwise", "rowwise", "rowwise_with_gw_hp")  # torchao's Float8LinearRecipeName (models/fp8.py)
