"""The benchmarks, one module per measurement, grouped by what they measure; each runs from the
repository's root as ``python -m benchmarks.<group>.<name>`` and ends through machine.publish:
JSON and Markdown in benchmarks/results/, the Markdown on stdout, where it went on stderr.

- startup/: how long the `zoo` commands take to answer
- training/: the training loop against its floor
- data/: decoding image folders, epochs on a folder, memory of a mapped split
- quality/: likelihood evaluation against its FLOP floor, one-class anomaly detection
- export/: the exported parts in onnxruntime against PyTorch (`zoo bench`)
- serving/: `zoo serve` under load, hostile clients, worker processes, where a request's time goes;
  serving/harness.py is what they share (the server process, the cores, the load clients)
- serving/peers/: `zoo serve` beside Triton, KServe and MLServer
"""
