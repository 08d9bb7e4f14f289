"""What the Hugging Face tests share (import it after ``pytest.importorskip("transformers")``):
a tiny GPT-2 built from a config (nothing downloaded), learnable token sequences, and quiet
CPU ``TrainingArguments``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers as tf

VOCAB = 48


def tiny_gpt2(dropout: float = 0.1) -> torch.nn.Module:
    """A one-layer GPT-2 (seeded), with ``dropout`` everywhere."""
    torch.manual_seed(0)
    config = tf.GPT2Config(
        vocab_size=VOCAB,
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
    )
    return tf.GPT2LMHeadModel(config)


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """``n`` deterministic, learnable sequences: each token is the previous one plus 1 (mod
    VOCAB); sequence ``i`` starts at ``i + offset``."""

    def __init__(self, n: int = 64, offset: int = 0) -> None:
        self.n, self.offset = n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = (torch.arange(16) + i + self.offset) % VOCAB
        return {"input_ids": ids, "labels": ids.clone()}


def cpu_args(tmp_path: Path, **kwargs: Any) -> Any:
    """``TrainingArguments(**kwargs)`` on the CPU, batches of 8, seed 0, without reports,
    saving or progress bars, writing under ``tmp_path``."""
    defaults: dict[str, Any] = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    defaults.update(kwargs)
    return tf.TrainingArguments(**defaults)
