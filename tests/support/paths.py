"""Where things are: the repository, the test data (real barcode photos, EPCIS documents)
and the folder for artefacts a test keeps (screenshots)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
ARTIFACTS = ROOT / "artifacts"
