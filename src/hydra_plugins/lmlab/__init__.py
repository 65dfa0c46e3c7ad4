"""lmlab's Hydra plugins, found by Hydra's plugin discovery: the Optuna sweeper and the local GPU launcher."""
