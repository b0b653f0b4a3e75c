"""A cell is one (artifact, batch size, thread budget): PyTorch and every onnxruntime finalist timed
side by side, in rounds. settle() turns its rounds into the reported figures."""

import dataclasses

from zoo.export.bench.preparation import PreparedPart
from zoo.export.bench.timing import quiet_stats
from zoo.export.bench.tuning import DEFAULTS, BatchPick, choose_finalist

TORCH = "torch"  # the PyTorch entry of a cell; the other entries are onnxruntime finalists


@dataclasses.dataclass
class LoadedArtifact:
    """An artifact opened in both workers at one thread budget: the PyTorch module and one
    onnxruntime session per finalist. The cells of every batch size share it."""

    artifact: PreparedPart
    threads: int
    worker_keys: dict  # entry ("torch" or a finalist) -> the key its worker knows it by
    setup_ms: dict  # entry -> session creation (onnxruntime) or module rebuild (torch) time
    finalists: dict  # finalist -> onnxruntime session options

    @property
    def entries(self) -> list:
        """ "torch" first, then the onnxruntime finalists."""
        return list(self.worker_keys)


@dataclasses.dataclass
class CellOutcome:
    """A cell's reported figures, from the rounds that did not choose the finalist."""

    choice: str  # the onnxruntime finalist reported
    stats: dict  # "onnxruntime" / "torch" -> quiet_stats of the reporting rounds
    max_abs_diff: float  # the chosen finalist's outputs against PyTorch's
    options: dict  # the chosen finalist's session options
    setup_ms: dict  # "onnxruntime" / "torch" -> set-up time
    pick: BatchPick  # the tuning record for this batch size


@dataclasses.dataclass
class Cell:
    loaded: LoadedArtifact
    batch: int
    samples: dict = dataclasses.field(default_factory=dict)  # entry -> one list of call times (ns) per round
    round_p50_us: dict = dataclasses.field(default_factory=dict)  # entry -> p50 of each round
    planned_rounds: int | None = None  # set by the first round, from how slow the calls are
    max_abs_diff: dict | None = None  # finalist -> max abs difference from PyTorch, from the first round
    outcome: CellOutcome | None = None  # set by settle()

    def __post_init__(self):
        for entry in self.loaded.entries:
            self.samples.setdefault(entry, [])
            self.round_p50_us.setdefault(entry, [])

    @property
    def artifact(self) -> PreparedPart:
        return self.loaded.artifact

    @property
    def threads(self) -> int:
        return self.loaded.threads

    @property
    def rounds_done(self) -> int:
        return len(self.round_p50_us[TORCH])


def settle(cell: Cell, quiet_keep: float, margin: float) -> CellOutcome:
    """Step 2 of tuning, and the cell's figures, from two halves of its rounds: the odd rounds choose
    the onnxruntime finalist (the defaults stay unless another is faster by ``margin``), the even
    rounds (spread over the same passes) give the reported figures of the chosen finalist and of
    PyTorch, and the gain over the defaults; so the choice is not judged on the samples that made it."""
    names = [e for e in cell.loaded.entries if e != TORCH]

    def half(entry, parity):  # with nothing to choose between, every round reports
        rounds = cell.samples[entry][parity::2] if len(names) > 1 else cell.samples[entry]
        return quiet_stats(rounds or cell.samples[entry], quiet_keep)

    choose = {e: half(e, 1)["p50_us"] for e in names}
    best = choose_finalist(choose, margin)
    report = {e: half(e, 0) for e in cell.loaded.entries}
    options = cell.loaded.finalists[best]
    return CellOutcome(
        choice=best,
        stats={"onnxruntime": report[best], "torch": report[TORCH]},
        max_abs_diff=cell.max_abs_diff[best],
        options=options,
        setup_ms={"onnxruntime": cell.loaded.setup_ms[best], "torch": cell.loaded.setup_ms[TORCH]},
        pick=BatchPick(
            choice=best,
            options=options,
            choice_p50_us=choose,
            reported_p50_us={e: report[e]["p50_us"] for e in names},
            speedup=report[DEFAULTS]["p50_us"] / report[best]["p50_us"],
        ),
    )
