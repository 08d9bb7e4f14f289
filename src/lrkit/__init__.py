"""lrkit: take the guesswork out of the learning rate.

Find it with a range test you can trust, schedule it, diagnose training that goes wrong,
tune it on Optuna, and get a starting point for your optimizer and architecture.
"""

from lrkit._version import __version__

__all__ = [
    "__version__",
]
