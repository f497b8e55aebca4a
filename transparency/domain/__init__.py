"""The pure core: code formats, GS1, EPCIS, the unit lifecycle, authenticity checks, code
issuance, identities, records and the error tree.

May import nothing outside ``transparency.domain``. Nothing here touches the web, the
database or the file system; tests/unit/test_architecture.py fails if it ever imports them.
"""
