"""What every benchmark result records about where it ran, and where results go by default.

It lives in the installed package so that `zoo bench` names the machine the same way from a wheel
install as from a checkout; benchmarks/machine.py re-exports it for the benchmarks package.
"""

import datetime
import os
import platform
from pathlib import Path

from zoo.core.atomic import atomic_write_text, write_json

WHEEL_RESULTS = "benchmark-results"  # under the working directory, where there is no checkout


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(threads: int | None = None) -> dict:
    import onnxruntime
    import torch

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "date": datetime.date.today().isoformat(),
    }
    if threads is not None:
        info["threads"] = threads
    return info


def slug(info: dict) -> str:
    name = info["gpu"] or info["cpu"]
    keep = "".join(c if c.isalnum() else "-" for c in name.lower())
    return "-".join(filter(None, keep.split("-")))[:40]


def checkout_root(module_file=__file__) -> Path | None:
    """The source checkout this package runs from (an editable install), or None (a wheel install:
    the module then sits in site-packages/zoo/export/bench/, beside no pyproject.toml)."""
    root = Path(module_file).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "benchmarks").is_dir() else None


def default_results_folder(module_file=__file__) -> Path:
    """benchmarks/results in a source checkout, where results are committed; ./benchmark-results
    from a wheel install."""
    root = checkout_root(module_file)
    return root / "benchmarks" / "results" if root else Path.cwd() / WHEEL_RESULTS


RESULTS = default_results_folder()


def write_results(stem: str, result: dict, markdown: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    """<out_dir>/<stem>-<machine>-<date>.json and .md; out_dir defaults to RESULTS."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{stem}-{slug(result['machine'])}-{result['machine']['date']}"
    # Atomically, as every file the zoo writes: an interrupted run leaves the last complete results.
    return write_json(base.with_suffix(".json"), result), atomic_write_text(base.with_suffix(".md"), markdown)
