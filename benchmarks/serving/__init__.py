"""`zoo serve` measured: under load, against hostile clients, with worker processes, and where a
request's time goes. harness.py holds what the scripts share; it imports none of them."""
