"""Label rendering: PDF sheets, PNG and SVG images and ZIP archives of codes.

May import ``transparency.domain`` only (and the image libraries, loaded on first use).
The services render labels for downloads; the CLI tools only download them over HTTP.
"""

BAD_LABEL = 3
"""The renderer's exit status when a label cannot be drawn (too small, not encodable)."""
