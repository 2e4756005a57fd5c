"""The SQLite backend's parts, one noun each (the store itself is :mod:`ledger.sqlite`):

- :mod:`.schema`: the file's tables, creating a store (atomically) and opening one;
- :mod:`.connections`: a store's connections, the writer's and the read connection;
- :mod:`.thread`: the thread that owns the writer connection;
- :mod:`.writer`: group commits and imports, planned by :class:`ledger.store.Planner`;
- :mod:`.reads`: the read queries and the whole-log reads that refuse a short answer;
- :mod:`.verify`: the hash-chain walk, SQLite's integrity check and where damage lies;
- :mod:`.errors`: ``sqlite3`` errors translated into :mod:`ledger.errors`.
"""
