"""The advisor's data: every number it gives, with its source, in one place.

The values follow lrkit's reference table of common practice (``shared/reference/advice.md``)
and the papers it cites. Code elsewhere only looks values up and combines them; to change advice,
change this table (the tests compare it with the reference values and the scaling formulas).

Names are canonical (lower case, ``_`` separated); :data:`OPTIMIZER_ALIASES` and
:data:`ARCHITECTURE_ALIASES` map the spellings users type to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURE_ALIASES",
    "ARCHITECTURE_NOTES",
    "ENTRIES",
    "FINE_TUNING_ENTRIES",
    "Entry",
    "LINEAR_RULE_MAX_BATCH",
    "LION_DIVISOR",
    "LION_RANGE_DIVISOR",
    "OPTIMIZERS",
    "OPTIMIZER_ALIASES",
    "OPTIMIZER_DEFAULTS",
    "Scaling",
    "SCALING",
    "SOURCES",
    "TRANSFORMER_WARMUP_STEPS",
    "WARMUP",
    "WARMUP_START",
]

Scaling = Literal["linear", "sqrt"]

#: canonical optimizer names, in the order they are listed to users
OPTIMIZERS: tuple[str, ...] = (
    "sgd",
    "sgd_momentum",
    "nesterov",
    "adam",
    "adamw",
    "rmsprop",
    "adagrad",
    "lion",
)
#: canonical architecture names
ARCHITECTURES: tuple[str, ...] = ("mlp", "cnn", "resnet", "transformer", "vit", "rnn", "gnn")

OPTIMIZER_ALIASES: dict[str, str] = {
    "sgd_momentum": "sgd_momentum",
    "sgdm": "sgd_momentum",
    "momentum": "sgd_momentum",
    "sgd_with_momentum": "sgd_momentum",
    "nag": "nesterov",
    "sgd_nesterov": "nesterov",
    "nesterov_sgd": "nesterov",
    "rms_prop": "rmsprop",
}

ARCHITECTURE_ALIASES: dict[str, str] = {
    "lstm": "rnn",
    "gru": "rnn",
    "convnet": "cnn",
    "conv": "cnn",
    "resnet50": "resnet",
    "resnet18": "resnet",
    "vision_transformer": "vit",
    "gcn": "gnn",
    "gat": "gnn",
    "feedforward": "mlp",
}

#: key -> (short citation, what it is); the rationale of every number names one of these
SOURCES: dict[str, tuple[str, str]] = {
    "reference": ("common practice", "lrkit reference table of typical starting points"),
    "karpathy": ("common practice", "'Karpathy's constant': 3e-4 for Adam (Karpathy, 2016)"),
    "kingma": ("Kingma & Ba 2015", "Adam: A Method for Stochastic Optimization (lr 1e-3)"),
    "loshchilov_adamw": ("Loshchilov & Hutter 2019", "Decoupled Weight Decay (AdamW)"),
    "vaswani": (
        "Vaswani et al. 2017",
        "Attention Is All You Need (warmup 4000 steps, inverse sqrt decay)",
    ),
    "devlin": ("Devlin et al. 2019", "BERT (fine-tuning lr 2e-5 to 5e-5)"),
    "dosovitskiy": ("Dosovitskiy et al. 2021", "ViT (Adam, warmup + cosine, large batch)"),
    "he": (
        "He et al. 2016",
        "Deep Residual Learning (SGD 0.9, lr 0.1 at batch 256, /10 twice)",
    ),
    "goyal": (
        "Goyal et al. 2017",
        "Accurate, Large Minibatch SGD (linear scaling rule + gradual warmup)",
    ),
    "hoffer": ("Hoffer et al. 2017", "Train longer, generalize better (square-root scaling)"),
    "malladi": (
        "Malladi et al. 2022",
        "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms (square-root rule)",
    ),
    "hoffer_malladi": (
        "Hoffer et al. 2017; Malladi et al. 2022",
        "square-root scaling for adaptive optimizers, derived from SDE arguments by Malladi et al.",
    ),
    "mccandlish": ("McCandlish et al. 2018", "An Empirical Model of Large-Batch Training"),
    "smith_topin": ("Smith & Topin 2017", "Super-Convergence (one-cycle)"),
    "smith_clr": ("Smith 2017", "Cyclical Learning Rates for Training Neural Networks"),
    "sgdr": ("Loshchilov & Hutter 2017", "SGDR (cosine annealing)"),
    "sutskever": (
        "Sutskever et al. 2013",
        "On the importance of initialization and momentum in deep learning",
    ),
    "tieleman": ("Tieleman & Hinton 2012", "RMSprop, lecture 6.5 (Keras default 1e-3)"),
    "duchi": ("Duchi et al. 2011", "Adagrad (PyTorch default 1e-2)"),
    "lion": (
        "Chen et al. 2023",
        "Symbolic Discovery of Optimization Algorithms (Lion: 3-10x smaller lr than AdamW)",
    ),
    "kipf": ("Kipf & Welling 2017", "Graph Convolutional Networks (Adam lr 1e-2)"),
    "zaremba": (
        "Zaremba et al. 2014",
        "Recurrent Neural Network Regularization (LSTM LM: plain SGD, lr 1, clip norm 5)",
    ),
    "pascanu": ("Pascanu et al. 2013", "On the difficulty of training RNNs (gradient clipping)"),
    "hf_linear": (
        "common guidance",
        "linear decay with warmup for fine-tuning (Hugging Face get_linear_schedule_with_warmup)",
    ),
    "plateau": ("common guidance", "reduce-on-plateau when the training length is unknown"),
}


@dataclass(frozen=True)
class Entry:
    """One row of the table: a starting lr, a plausible search range, and where they come from.

    ``reference_batch_size`` is the batch size the value was published for (None when the
    value is not tied to one).
    """

    lr: float
    low: float
    high: float
    source: str
    why: str
    reference_batch_size: int | None = None


#: the optimizer's own default: used for combinations without an entry (with a note)
OPTIMIZER_DEFAULTS: dict[str, Entry] = {
    "sgd": Entry(1e-2, 1e-3, 1e-1, "reference", "SGD default for an unknown setup"),
    "sgd_momentum": Entry(
        1e-2, 1e-3, 1e-1, "reference", "SGD (momentum 0.9) default for an unknown setup"
    ),
    "nesterov": Entry(
        1e-2, 1e-3, 1e-1, "sutskever", "Nesterov momentum uses the SGD + momentum defaults"
    ),
    "adam": Entry(1e-3, 1e-4, 1e-2, "kingma", "Adam-family default for an unknown setup"),
    "adamw": Entry(1e-3, 1e-4, 1e-2, "loshchilov_adamw", "Adam-family default (AdamW)"),
    "rmsprop": Entry(1e-3, 1e-4, 1e-2, "tieleman", "RMSprop default"),
    "adagrad": Entry(1e-2, 1e-3, 1e-1, "duchi", "Adagrad default"),
    "lion": Entry(1e-4, 1e-5, 1e-3, "lion", "Lion default: AdamW's 1e-3 divided by 10"),
}

#: (optimizer, architecture) -> entry, training from scratch. Lion rows are derived below.
ENTRIES: dict[tuple[str, str], Entry] = {
    ("adam", "mlp"): Entry(3e-4, 3e-5, 3e-3, "karpathy", "Adam on an MLP"),
    ("adam", "cnn"): Entry(1e-3, 1e-4, 1e-2, "reference", "Adam on a CNN"),
    ("adam", "transformer"): Entry(
        3e-4,
        1e-5,
        1e-3,
        "reference",
        "Adam on a transformer: 1e-4 without warmup, 3e-4 with warmup (the schedule has one)",
    ),
    ("adamw", "transformer"): Entry(
        3e-4, 1e-5, 1e-3, "reference", "AdamW for GPT-style transformer pre-training"
    ),
    ("adam", "vit"): Entry(
        1e-4, 1e-5, 1e-3, "dosovitskiy", "Adam on a ViT (large batch, warmup + cosine)"
    ),
    ("adamw", "vit"): Entry(
        1e-4, 1e-5, 1e-3, "dosovitskiy", "AdamW on a ViT (large batch, warmup + cosine)"
    ),
    ("adam", "gnn"): Entry(1e-2, 1e-3, 5e-2, "kipf", "Adam on a graph network (GCN)"),
    ("adamw", "gnn"): Entry(1e-2, 1e-3, 5e-2, "kipf", "AdamW on a graph network (GCN)"),
    ("sgd", "rnn"): Entry(
        1.0,
        0.1,
        20.0,
        "zaremba",
        "plain SGD on an LSTM language model, with the gradient norm clipped at 5 (PyTorch's "
        "word-language-model example starts at 20)",
    ),
    ("sgd_momentum", "cnn"): Entry(1e-2, 1e-3, 1e-1, "reference", "SGD + momentum 0.9 on a CNN"),
    ("nesterov", "cnn"): Entry(1e-2, 1e-3, 1e-1, "reference", "Nesterov SGD (0.9) on a CNN"),
    ("sgd_momentum", "resnet"): Entry(
        1e-1, 1e-2, 1.0, "he", "SGD + momentum 0.9 on a ResNet (ImageNet / CIFAR)", 256
    ),
    ("nesterov", "resnet"): Entry(
        1e-1, 1e-2, 1.0, "he", "Nesterov SGD (0.9) on a ResNet (ImageNet / CIFAR)", 256
    ),
}

#: optimizer -> entry for fine-tuning a pre-trained model (any architecture)
FINE_TUNING_ENTRIES: dict[str, Entry] = {
    "adamw": Entry(
        1e-5, 1e-6, 1e-4, "devlin", "AdamW fine-tuning a pre-trained model (NLP: 1e-5 to 5e-5)"
    ),
    "adam": Entry(
        1e-5, 1e-6, 1e-4, "devlin", "Adam fine-tuning a pre-trained model (NLP: 1e-5 to 5e-5)"
    ),
}

#: Lion needs a smaller lr than AdamW (Chen et al. 2023 recommend 3-10x); lrkit divides by 3
#: for the starting point and by 10 for the low end of the search range.
LION_DIVISOR = 3.0
LION_RANGE_DIVISOR = 10.0


def _lion(entry: Entry, what: str) -> Entry:
    return Entry(
        entry.lr / LION_DIVISOR,
        entry.low / LION_RANGE_DIVISOR,
        entry.high / LION_DIVISOR,
        "lion",
        f"Lion: the AdamW value for {what} divided by {LION_DIVISOR:g} ({entry.why})",
        entry.reference_batch_size,
    )


for (_opt, _arch), _entry in list(ENTRIES.items()):
    if _opt == "adamw":
        ENTRIES[("lion", _arch)] = _lion(_entry, _arch)
FINE_TUNING_ENTRIES["lion"] = _lion(FINE_TUNING_ENTRIES["adamw"], "fine-tuning")

#: batch-size scaling rule per optimizer, with the source of the rule and whether it is
#: derived for that optimizer (False: extrapolated from a related optimizer, said in a note)
SCALING: dict[str, tuple[Scaling, str, bool]] = {
    "sgd": ("linear", "goyal", True),
    "sgd_momentum": ("linear", "goyal", True),
    "nesterov": ("linear", "goyal", True),
    "adam": ("sqrt", "hoffer_malladi", True),
    "adamw": ("sqrt", "hoffer_malladi", True),
    "rmsprop": ("sqrt", "hoffer_malladi", True),
    "adagrad": ("sqrt", "hoffer", False),
    "lion": ("sqrt", "hoffer", False),
}

#: Goyal et al. 2017 showed the linear rule holding on ImageNet up to this batch size
LINEAR_RULE_MAX_BATCH = 8192

#: warmup fractions of the total steps and fixed lengths, with their sources
WARMUP: dict[str, tuple[float, int | None, str]] = {
    # scenario: (fraction of total steps, cap in steps or None, source)
    "transformer": (0.05, 4000, "vaswani"),
    "fine_tuning": (0.10, None, "hf_linear"),
    "large_batch": (0.05, None, "goyal"),
    "one_cycle": (0.30, None, "smith_topin"),
}
#: warmup length when the total is unknown (inverse square root, the original Transformer)
TRANSFORMER_WARMUP_STEPS = 4000
#: linear warmup starts at this fraction of the peak instead of 0 (no wasted first step)
WARMUP_START = 0.01
#: architecture-specific advice printed with every recommendation for it
ARCHITECTURE_NOTES: dict[str, tuple[str, str]] = {
    "rnn": ("clip the gradient norm (e.g. 1.0): recurrent nets explode without it", "pascanu"),
    "transformer": ("transformers need warmup: without it Adam diverges early", "vaswani"),
    "vit": ("ViTs need warmup and are usually trained with a large batch", "dosovitskiy"),
}
