"""Every fenced Python and shell block in docs/ and README.md runs, on small data, unless it is marked
as not run with its reason (the markers and how each language runs: tests/docs_blocks.py).

The pages run in a folder of their own, on the small generated MNIST-shaped datasets
(``ZOO_DATA_DIR``), each page's blocks in order in one folder, so that a page reads as a session
would: train, then export what was trained, then serve it. Getting started runs first; every other
page starts from a copy of what it left (``runs/vae``, exported). A served port is a free one: the
runner puts it where a block says 8000.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from docs_blocks import blocks, console_commands, output_matches
from tiny_data import write_tiny_idx

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIRST = DOCS / "getting-started.md"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
BLOCK_TIMEOUT = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_port(text: str, port: int) -> str:
    """Blocks show the default port; the runner serves on a free one."""
    text = text.replace(":8000", f":{port}").replace("--port 8000", f"--port {port}")
    return text.replace("zoo serve ", f"zoo serve --port {port} ") if "--port" not in text else text


class Session:
    """One page's blocks, run in order in one folder; background blocks end with the page."""

    def __init__(self, cwd: Path, data: Path):
        self.cwd, self.port, self.background = cwd, free_port(), []
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "ZOO_DATA_DIR": str(data),
            "ZOO_OFFLINE": "1",
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONUNBUFFERED": "1",
        }

    def run_page(self, page: Path) -> list:
        """Failures, one message per failing block (empty when every block ran as shown)."""
        failures = []
        try:
            for block in blocks(page):
                if block.runs:
                    problem = self.run(block)
                    if problem:
                        failures.append(f"{block.where()} ({block.language}): {problem}")
        finally:
            self.stop()
        return failures

    def run(self, block):
        text = with_port(block.text, self.port)
        if block.background:
            return self.start(text, block.language)
        if block.language == "python":
            return self.finished(self.sh([sys.executable, "-c", text]))
        if block.language == "pycon":
            (self.cwd / "block.txt").write_text(text)
            return self.finished(
                self.sh([sys.executable, "-m", "doctest", "-o", "ELLIPSIS", "-o", "NORMALIZE_WHITESPACE", "block.txt"])
            )
        if block.language == "bash":
            return self.finished(self.sh(["bash", "-euo", "pipefail", "-c", text]))
        for command in console_commands(text):
            result = self.sh(["bash", "-o", "pipefail", "-c", command.command], merge=True)
            if command.should_fail != (result.returncode != 0):
                return f"$ {command.command}: exit status {result.returncode}\n{result.stdout[-3000:]}"
            if not output_matches(command.shown, result.stdout.splitlines()):
                return (
                    f"$ {command.command}: the output differs from what the block shows\n--- shown\n"
                    + "\n".join(command.shown)
                    + "\n--- actual\n"
                    + result.stdout[-3000:]
                )
        return None

    def sh(self, argv, merge=False):
        """Run a block in a process group of its own, so that a block over its time leaves nothing
        running behind it (a benchmark's workers, a server)."""
        process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=self.env,
            text=True,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        )
        try:
            stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            stderr = f"{stderr or ''}\nstill running after {BLOCK_TIMEOUT} s: killed"
            return subprocess.CompletedProcess(argv, -9, stdout, stderr)
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    @staticmethod
    def finished(result):
        if result.returncode != 0:
            return f"exit status {result.returncode}\n{(result.stderr or '')[-3000:]}{result.stdout[-1000:]}"
        return None

    def start(self, block_text: str, language: str):
        """Start a background block (a server), wait until it answers on the port, and for a console
        block check what it printed by then against what the block shows."""
        commands = console_commands(block_text) if language == "console" else []
        log_path = self.cwd / f"background-{len(self.background)}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                ["bash", "-c", commands[0].command if commands else block_text],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return f"the background block exited ({process.returncode}):\n{log_path.read_text()[-2000:]}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/health/ready", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            return "the background block did not answer within 60 s"
        # What it shows is how it starts; its log goes on (an access line per request).
        if commands and not output_matches([*commands[0].shown, "..."], log_path.read_text().splitlines()):
            return (
                "its output differs from what the block shows\n--- shown\n"
                + "\n".join(commands[0].shown)
                + "\n--- actual\n"
                + log_path.read_text()[-3000:]
            )
        return None

    def stop(self):
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@pytest.fixture(scope="session")
def started(tmp_path_factory):
    """Getting started, run once: its folder (the exported runs/vae) and its failures."""
    base = tmp_path_factory.mktemp("docs")
    write_tiny_idx(base / "data" / "mnist", seed=0)
    write_tiny_idx(base / "data" / "fashion-mnist", seed=1)
    work = base / "work"
    work.mkdir()
    return work, base / "data", Session(work, base / "data").run_page(FIRST)


def test_getting_started_runs_from_nothing(started):
    _, _, failures = started
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("page", [p for p in PAGES if p != FIRST], ids=lambda p: str(p.relative_to(ROOT)))
def test_page_blocks_run(page, started, tmp_path):
    work, data, _ = started
    if not any(block.runs for block in blocks(page)):
        return  # nothing to run; every block is marked, with its reason (checked below)
    shutil.copytree(work, tmp_path / "work", symlinks=True)
    failures = Session(tmp_path / "work", data).run_page(page)
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_not_run_says_why(page):
    for block in blocks(page):
        assert block.not_run is None or len(block.not_run) > 10, f"{block.where()}: 'not run' without a reason"
        if block.background:
            assert block.language == "bash" or (
                block.language == "console" and len(console_commands(block.text)) == 1
            ), f"{block.where()}: a background block is a bash block or a console block of one command"
