"""``python -m replay`` runs the ``payledger`` command line."""

from payledger_entry import run

run()
