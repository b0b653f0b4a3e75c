"""The fenced code blocks of the documentation (docs/*.md and README.md), as the docs test runs them.

A block runs unless a comment on the lines just before its fence says otherwise:

    <!-- not run: the reason, e.g. a full training run of about 45 minutes -->
    <!-- background: the server the blocks below talk to -->

``not run`` needs a reason. ``background`` starts a bash block, or a console block of one command,
and leaves it running until the page's last block has run (a server that later blocks call); a
console block's output is checked once the server answers (as how its output starts). Which languages run, and how:

- ``python``: a script; it must exit 0.
- ``pycon``: a doctest (``>>>`` lines and the output they show, checked with ELLIPSIS).
- ``bash``: a script under ``set -euo pipefail``; it must exit 0.
- ``console``: ``$ `` lines are commands; the lines under each are the output it shows, checked
  with every measured number (one with a decimal point or an exponent: sizes, timings, errors
  against PyTorch) free to differ, whole numbers (counts, seeds, shapes) as shown, ``...`` in a
  line standing for any text and a line ``...`` for any lines. A command whose shown output starts
  with ``Error:`` must fail; any other must succeed.

Any other language (toml, js, text, a fence without one) is not run.
"""

import re
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = ("python", "pycon", "bash", "console")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not run|background)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    not_run: str | None = None  # the reason, when marked
    background: bool = False

    @property
    def runs(self) -> bool:
        return self.language in RUN_LANGUAGES and self.not_run is None

    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the marker written before it, if any."""
    lines = Path(path).read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = opening["info"].strip().split(" ")[0].lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[i + 1 : end]]
        block = Block(Path(path), i + 1, language, "\n".join(body) + "\n")
        marker = _marker_before(lines, i)
        if marker is not None:
            if marker["kind"] == "not run":
                block.not_run = marker["reason"] or ""
            else:
                block.background = True
        found.append(block)
        i = end + 1
    return found


def _marker_before(lines: list, fence_index: int):
    """The marker comment on the nearest non-blank line above the fence, or None."""
    j = fence_index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    return MARKER.match(lines[j]) if j >= 0 else None


@dataclass
class Command:
    command: str
    shown: list  # the output lines shown under it

    @property
    def should_fail(self) -> bool:
        return bool(self.shown) and self.shown[0].startswith("Error:")


def console_commands(text: str) -> list[Command]:
    """A console block's ``$ `` commands, each with the output shown under it."""
    commands = []
    for line in text.splitlines():
        if line.startswith("$ "):
            commands.append(Command(line[2:], []))
        elif commands:
            commands[-1].shown.append(line)
    return commands


# A measured number: a decimal point or an exponent (1.3, 3.6e-07); whole numbers (a count, a seed,
# a shape) are checked as shown.
MEASURED = r"[-+]?\d[\d,]*(?:\.\d+(?:e[-+]?\d+)?|e[-+]?\d+)"


def _line_pattern(shown: str) -> re.Pattern:
    """A shown output line as a pattern: measured numbers are free, runs of spaces are any spaces,
    and ``...`` is any text."""
    pattern = []
    for k, piece in enumerate(shown.strip().split("...")):
        parts = re.split(f"({MEASURED})|(\\s+)", piece)
        pattern.append(".*" if k else "")
        for j in range(0, len(parts), 3):
            pattern.append(re.escape(parts[j] or ""))
            if j + 1 < len(parts):
                pattern.append(MEASURED if parts[j + 1] else r"\s+" if parts[j + 2] else "")
    return re.compile("".join(pattern))


def output_matches(shown: list, actual: list) -> bool:
    """Whether the actual output lines are what the block shows (see the module's docstring)."""
    actual = [line for line in actual if line.strip()]
    shown = [line for line in shown if line.strip()]

    def match(s: int, a: int) -> bool:
        if s == len(shown):
            return a == len(actual)
        if shown[s].strip() == "...":
            return any(match(s + 1, k) for k in range(a, len(actual) + 1))
        return a < len(actual) and bool(_line_pattern(shown[s]).fullmatch(actual[a].strip())) and match(s + 1, a + 1)

    return match(0, 0)
