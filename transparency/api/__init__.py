"""The HTTP edge: app factory, middleware, problem responses, dependencies and routes,
with the customer pages (``pages/``) and the checks' fast path (``fastpath/``).

May import: the services, ``transparency.runtime``, ``transparency.labels`` (layouts),
``transparency.domain`` and, to open the pool in the lifespan, ``transparency.db.pool``.
Routes call services; no query runs here.
"""
