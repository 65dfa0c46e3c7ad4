"""Sweeps: the Optuna search and its pruning callback, the SLURM launcher's helpers, the sweep summary. The Hydra
plugins that drive them are in `hydra_plugins/lmlab/`."""
