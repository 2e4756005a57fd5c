"""One module per ``payledger`` command; each has ``register(subparsers)``."""
