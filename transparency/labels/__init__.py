"""Label rendering: PDF sheets, PNG and SVG images and ZIP archives of codes.

May import ``transparency.domain`` only (and the image libraries, loaded on first use).
The services render labels for downloads; the CLI tools only download them over HTTP.
"""

BAD_LABEL = 3
"""The renderer's exit status when a label cannot be drawn (too small, not encodable)."""

PIECE = 1 << 14
"""Bytes of a label file the renderer writes at a time, its pipe's size, and what the
parent reads at once: about a fifth of a second of drawing each (70 KB of PDF a second)."""
