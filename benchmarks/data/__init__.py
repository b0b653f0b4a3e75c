"""Reading data: decoding image folders, an epoch on a folder, memory of a memory-mapped split."""
