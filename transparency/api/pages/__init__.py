"""The customer's phone pages: their routes, Jinja templates and translations together.

Part of the web edge (``transparency.api``): may import what the API may.
"""
