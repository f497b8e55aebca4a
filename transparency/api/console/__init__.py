"""The brand console: server-rendered pages a brand manager uses instead of curl.

Its pages call the same services as the API (its downloads are the API's own handlers),
with a session cookie standing for the bearer key. Part of the web edge
(``transparency.api``): may import what the API may.
"""
