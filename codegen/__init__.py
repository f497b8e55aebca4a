"""Issue signed per-unit codes in bulk, register a brand's own GS1 serials, render labels."""
