"""``python -m lrkit`` runs the command line."""

from lrkit.cli import run

if __name__ == "__main__":
    run()
