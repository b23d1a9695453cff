"""Checkpoints live in `mrpn.checkpoint` (inference reads them too and must not import training);
this name stays importable for existing code."""
from mrpn.checkpoint import (CheckpointError, check_compatible, load_checkpoint, load_model_weights,  # noqa: F401
                             save_checkpoint)
