"""Health-code verification: one module per scheme, each returning a CodeResult."""
