"""Live fan-out of committed changes to connected browsers."""
