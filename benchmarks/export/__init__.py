"""The exported parts in onnxruntime against PyTorch eager (the same as `zoo bench`)."""
