"""``zoo bench``: onnxruntime against PyTorch eager, for every model and exported part.

How a run goes (the README's "Benchmarks: onnxruntime against PyTorch" shows its results), and where
each step lives:

1. Prepare (preparation.py): every model is built with seeded weights (inference speed does not
   depend on training), written as a run folder and exported with ``zoo.export.onnx`` (the exporter
   users get). Each part's FLOPs per sample are counted from its PyTorch module with
   ``FlopCounterMode`` (2 x MACs of the matrix products and convolutions); its inputs are drawn once
   and saved, so both runtimes see the very same arrays.
2. Measure, once per thread budget T (scheduling.py, measuring.py): two worker processes, one per
   runtime (``python -m zoo.export.bench.worker --runtime onnxruntime|torch --threads T``, see
   worker.py): ``torch.set_num_threads(T)`` on one side, ``intra_op_num_threads <= T`` on the other,
   one inter-op thread each. Only one of them works at any moment, and they take turns cell by cell
   (cells.py) in several rounds, so a change in machine load hits both runtimes alike. The
   onnxruntime worker never imports torch (ort_backend.py), and its thread pool does not spin
   unless tuning chose that.
3. Tune (tuning.py): per artifact and thread budget, onnxruntime's session options are chosen from
   measurement: one knob at a time (graph optimisation level, execution mode, denormals as zero,
   spinning), then per batch size, inside the measurement, among the defaults, the tuned options and
   the tuned options on one thread (half the rounds choose, the other half report); a change is kept
   only when it wins by more than ``tune_margin``.
4. References, measured in the same run beside every model: the fp32 matmul ceiling (a large square
   ``torch.matmul`` and the same onnxruntime ``MatMul``) and the fixed cost of one call (onnxruntime on
   an Identity graph, one small torch ``Linear``).
5. Report (results.py, markdown.py, plot.py, notes.py): one row per (model, part, runtime, batch,
   threads) in ``<out>/inference-<machine>-<date>`` ``.json``, ``.md`` and ``.png``; run.py ties the
   steps together.

Nothing in here knows any architecture: models come from ``zoo.list_models()`` and are driven through
the ``AutoEncoder`` interface and the exporter's parts (``zoo.export.parts``).

No module of this package imports torch at module level: the onnxruntime worker imports the package.
"""

from zoo.export.bench.results import compare
from zoo.export.bench.run import run_benchmark
from zoo.export.bench.settings import DEFAULT_OPTIONS, RUNTIMES, Settings

__all__ = ["DEFAULT_OPTIONS", "RUNTIMES", "Settings", "compare", "run_benchmark"]
