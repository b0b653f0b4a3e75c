# `python -m zoo ...` (and `torchrun -m zoo train ...`) run the same CLI as `zoo`.
from zoo.cli import main

if __name__ == "__main__":  # not when a spawned worker process (zoo serve --workers) imports it again
    main()
