"""Use cases: one function per operation, called by exactly one route or CLI command."""
