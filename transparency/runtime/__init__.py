"""The service's machinery below the HTTP edge: settings, logs, the job runner, the
keyring, envelope encryption, notifications, buffered scan events and worker pools.

May import: ``transparency.domain``, ``transparency.db`` and ``transparency.runtime``.
Never the services, the web edge or ``transparency.serve``.
"""
