"""The life of a run directory: one writer (lock), intact checkpoints, durable metrics, no leaked secrets,
and input checked before anything in the directory is written."""
