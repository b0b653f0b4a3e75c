"""What every benchmark result records about where it ran."""

import datetime
import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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


def write_results(stem: str, result: dict, markdown: str) -> tuple[Path, Path]:
    """benchmarks/results/<stem>-<machine>-<date>.json and .md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    base = RESULTS / f"{stem}-{slug(result['machine'])}-{result['machine']['date']}"
    base.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    base.with_suffix(".md").write_text(markdown)
    return base.with_suffix(".json"), base.with_suffix(".md")
