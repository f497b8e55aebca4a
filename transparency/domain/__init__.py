"""The pure core: code formats, the unit lifecycle, identities and the error tree.

Nothing in this package touches the web, the database or the file system; a test
(tests/test_architecture.py) fails if it ever imports them.
"""
