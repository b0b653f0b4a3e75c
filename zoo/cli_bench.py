"""`zoo bench` (filled in by the benchmark work)."""
