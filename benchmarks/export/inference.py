"""onnxruntime against PyTorch eager, for every registered model and exported part (encoder,
decoder, generator), at batch sizes 1 to 1024 and at 1 thread and all cores, with the machine's fp32
matmul ceiling and the fixed cost of one call measured in the same run.

The same as `zoo bench`; the measuring code is zoo.export.bench. Writes
benchmarks/results/inference-<machine>-<date>.json, .md and .png. Run:

    python -m benchmarks.export.inference                      # the full run, a few minutes on 2 cores
    python -m benchmarks.export.inference vae deep-ae --quick  # a smoke run, well under a minute
    python -m benchmarks.export.inference --compare benchmarks/results/inference-....json --out /tmp/rerun
"""

import sys

from zoo.core.errors import ZooError
from zoo.export.commands import bench_cmd


def main():
    try:
        bench_cmd.main(prog_name="python -m benchmarks.export.inference", standalone_mode=True)
    except ZooError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
