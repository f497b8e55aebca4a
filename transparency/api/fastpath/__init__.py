"""The fast path of the station and customer checks: lean routes and the fast lane that
reaches them ahead of Starlette's routing (see each module).

Part of the web edge (``transparency.api``): may import what the API may.
"""
