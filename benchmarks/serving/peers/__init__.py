"""`zoo serve` beside the systems a user would pick instead: Triton, KServe and MLServer."""
