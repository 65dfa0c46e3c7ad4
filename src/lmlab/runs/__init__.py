"""A run's life beyond the training loop: its directory kept safe (validate, preflight, lock, guard), where it
resumes from, what its checkpoints record, where its metrics and logs go, and how it runs under DDP,
sweeps and SLURM."""
