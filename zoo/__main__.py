# `python -m zoo ...` (and `torchrun -m zoo train ...`) run the same CLI as `zoo`.
from .cli import main

main()
