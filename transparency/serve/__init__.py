"""Running the service: the ``transparency`` command line, the process supervisor, the
embedded PostgreSQL and the HTTP protocol tuned for one send per response.

The top layer: may import every other layer of ``transparency``; nothing imports it but
``transparency.__main__`` (and the benches and tests).
"""
