"""Language-model evaluation: lm-eval tasks on an in-memory model (lmlab-eval, the downstream_eval callback)."""
