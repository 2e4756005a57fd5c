"""The parts of :mod:`ledger.merkle`, one noun per module; import them from there."""
