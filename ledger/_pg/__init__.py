"""The PostgreSQL backend's parts, one noun each; :mod:`ledger.postgres` puts them together.

- ``url``: recognising a PostgreSQL URL, and showing it without its password
- ``errors``: asyncpg and OS errors translated into :mod:`ledger.errors`
- ``connect``: opening a connection with the store's session settings
- ``schema``: the tables, the triggers, the locking function and the stored schema version
- ``sql``: the statements of the append and read paths, and the text columns' escaping
- ``pool``: the small pool of reading connections
- ``writer``: the group commit transaction and the import transaction
- ``listener``: LISTEN/NOTIFY as a wake-up for ``wait_for_append``
- ``verify``: the integrity walk
"""
