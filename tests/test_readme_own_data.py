"""The "Train on your own data" example (docs/own-data.md) runs as written on a folder of photos of mixed
sizes with a bad file among them, and does what the section says."""

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner
from image_folders import write_images

from zoo.cli import cli
from zoo.export.runtime import Encoder

PAGE = Path(__file__).resolve().parents[1] / "docs" / "own-data.md"
HEADING = "# Train on your own data"


def example_commands() -> list:
    text = PAGE.read_text()
    assert HEADING in text, f"{PAGE} lost its heading {HEADING!r}"
    block = re.search(r"^```console\n(.*?)^```", text.split(HEADING, 1)[1], re.S | re.M).group(1)
    return [shlex.split(line.removeprefix("$ ")) for line in block.splitlines() if line.startswith("$ ")]


def test_the_three_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The step budget of data by path (1,000 steps) would train 12 images for 1,000 epochs here.
    monkeypatch.setattr("zoo.train.data_defaults.DATA_MIN_STEPS", 5)
    write_images(Path("photos") / "cats", 6, size=(90, 120), seed=1)
    write_images(Path("photos") / "dogs", 6, size=(100, 80), seed=2)
    Path("photos", "dogs", "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    commands = example_commands()
    assert [c[:2] for c in commands] == [["zoo", "train"], ["zoo", "eval"], ["zoo", "export"]]
    results = [CliRunner().invoke(cli, command[1:]) for command in commands]
    for command, result in zip(commands, results):
        assert result.exit_code == 0, f"{' '.join(command)}: {result.stderr or result.output}"
    warning = [line for line in results[0].stderr.splitlines() if line.startswith("warning: left out")]
    assert len(warning) == 1 and "left out 1 of 13 files" in warning[0] and "dogs/broken.jpg" in warning[0]
    data = json.loads(Path("runs/conv-ae/config.json").read_text())["data"]
    assert data["left_out"]["count"] == 1 and data["label_names"] == ["cats", "dogs"]
    assert data["preprocess"]["size"] == [64, 64] and data["preprocess"]["channels"] == 3
    encoder = Encoder("runs/conv-ae/encoder.onnx")
    assert encoder.encode_images([Path("photos/cats/img0000.png")]).shape == (1, 8, 16, 16)
