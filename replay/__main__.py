"""``python -m replay`` runs the ``payledger`` command line."""

from replay.cli import run

run()
