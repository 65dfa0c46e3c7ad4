"""Values of model keys that the config check (`lmlab.runs.validate`) and the model code share; light on purpose."""

ACTIVATION_CHECKPOINTING = ("none", "full", "selective")  # model.activation_checkpointing (models/blocks.py)
