"""Prove fulfilment throughput against a running API with locust."""
