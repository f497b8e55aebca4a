"""The brand's CLI: issue signed per-unit codes in bulk, register a brand's own GS1 serials,
download labels, parse codes.

May import ``transparency.domain`` (the code formats) and nothing else of the service,
which it reaches over HTTP.
"""
