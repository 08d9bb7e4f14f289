"""What the Lightning tests share (import it after ``pytest.importorskip("lightning.pytorch")``):
a quiet one-device CPU Trainer, and a copy of a module's weights and buffers."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as L
import torch


def cpu_trainer(tmp_path: Path, **kwargs: Any) -> Any:
    """``L.Trainer(**kwargs)`` on one CPU, without logger, progress bar, summary, checkpoints
    or warnings, writing under ``tmp_path``."""
    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    defaults.update(kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return L.Trainer(**defaults)


def weights(module: torch.nn.Module) -> list[torch.Tensor]:
    """A copy of ``module``'s state (parameters and buffers), in order."""
    return [t.detach().clone() for t in module.state_dict().values()]
