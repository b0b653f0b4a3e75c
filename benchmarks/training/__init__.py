"""The training loop against the lecture's loop and the bare floor."""
