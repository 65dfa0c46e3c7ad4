"""Everything checkpoint-related: what a checkpoint holds (`state.py`), how it is written (`files.py` for one
file, `sharded.py` for FSDP's directories; both atomic, checksummed, secrets masked, NaN refused), the one
verified reader every command uses (`reader.py`), the resume plan (`resume.py`, `position.py`), and what other
commands make of a checkpoint (`hf_model.py`, `init_from.py`, `locate.py`, `consolidate.py`)."""
