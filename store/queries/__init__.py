"""Read queries: one module per view or concern, each returning plain data or frames."""
