"""``zoo serve``: exported models over HTTP in the Open Inference Protocol (KServe v2), torch-free."""
