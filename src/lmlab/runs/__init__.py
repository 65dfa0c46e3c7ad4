"""A run's lifecycle beyond the training loop: where it resumes from, and what its checkpoints record."""
