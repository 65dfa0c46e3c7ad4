"""Training over several devices: FSDP2 per block (`fsdp`)."""
