"""The mutable working state behind :class:`projections.working.Working`: an account's and a
payment's, each changed in place by the events of the log, and turned into the persisted states
(:mod:`projections.state`) only when their rows are written."""
