"""The PostgreSQL backend's parts, one noun each; :mod:`ledger.postgres` puts them together.

- ``url``: recognising a PostgreSQL URL, and showing it without its password
- ``errors``: asyncpg and OS errors translated into :mod:`ledger.errors`
- ``connect``: opening a connection with the store's session settings
- ``schema``: the tables, the triggers, the locking function and the stored schema version (and
  the upgrade from versions 1 and 2: the running total summed, the Merkle tree folded)
- ``sql``: the statements of the append and read paths, and the text columns' escaping
- ``pool``: the small pool of reading connections
- ``writer``: the group commit transaction and the import transaction
- ``listener``: LISTEN/NOTIFY as a wake-up for ``wait_for_append``
- ``states``: the read models' derived state (``store.states``)
- ``reads``: the indexed reads of the read models and the replay, one statement each
- ``verify``: the integrity walk (the chain, the head and its running total)
"""
