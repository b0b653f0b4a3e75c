"""Export to ONNX (``zoo.export.onnx``, needs torch) and run the files (``zoo.export.runtime``,
numpy + onnxruntime only)."""
