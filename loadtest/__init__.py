"""Prove fulfilment throughput against a running API with locust.

May import ``transparency.domain`` (the code formats) and nothing else of the service,
which it reaches over HTTP.
"""
