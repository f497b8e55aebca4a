"""Use cases: one function per operation, called by a route or a CLI command, and the
bodies of the background jobs (issuance, imports), each registered with the runner by kind.

May import: ``transparency.runtime``, ``transparency.db``, ``transparency.labels``,
``transparency.domain`` and the ``scanner`` package's public face (photo decoding).
"""
