"""Optimizers beyond torch's own (`optimizer=muon`: `lmlab.optim.muon`).

This file imports nothing: `lmlab.runs.validate` and `lmlab.parallel.fsdp_config` read the names below while
checking a config, before torch is imported.
"""

MUON = "lmlab.optim.muon.MuonWithAdamW"  # the `_target_` of conf/optimizer/muon.yaml
# Its keys: MuonWithAdamW's arguments (tests/unit/optim/test_muon.py keeps them equal).
MUON_KEYS = ("lr", "weight_decay", "momentum", "nesterov", "ns_steps", "adjust_lr_fn", "betas", "eps", "fused")
ADJUST_LR_FNS = ("match_rms_adamw", "original")  # torch.optim.Muon's
