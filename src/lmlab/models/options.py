"""Values of model keys that the model code and its config check (`config_checks.py`) share; light on purpose."""

ACTIVATION_CHECKPOINTING = ("none", "full", "selective")  # model.activation_checkpointing (models/blocks.py)
# torch.compile's modes (torch._inductor.list_mode_options(); tests/unit/models/test_options.py compares)
COMPILE_MODES = (None, "default", "lite", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
FP8_RECIPES = ("tensorwise", "rowwise", "rowwise_with_gw_hp")  # torchao's Float8LinearRecipeName (models/fp8.py)
# model.attn_implementation: transformers' built-in attention kernels (a hub kernel, `org/name`, also works).
ATTN_IMPLEMENTATIONS = (None, "eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
# model.config.hidden_act: transformers.activations.ACT2CLS's names, without importing torch
# (tests/unit/models/test_options.py compares them with the installed transformers').
ACTIVATIONS = ("gelu", "gelu_10", "gelu_accurate", "gelu_fast", "gelu_new", "gelu_python", "gelu_python_tanh",
               "gelu_pytorch_tanh", "hardswish", "laplace", "leaky_relu", "linear", "mish", "prelu", "quick_gelu",
               "relu", "relu2", "relu6", "sigmoid", "silu", "sqrtsoftplus", "swish", "tanh", "xielu")
LORA_BIASES = ("none", "all", "lora_only")  # peft.LoraConfig's `bias`
