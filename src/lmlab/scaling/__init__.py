"""`lmlab-scaling`: scaling laws fitted to a sweep's runs (docs/scaling.md). Imports neither torch nor Lightning."""
