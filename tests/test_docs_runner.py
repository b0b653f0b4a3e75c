"""The docs runner itself: a broken block fails its page, a block marked not run is left alone,
a console block's output is held to what it shows, and a marker without a reason is caught."""

from pathlib import Path

from docs_blocks import blocks, output_matches
from test_docs_blocks import Session

PAGE = """# A page

```python
print("fine")
```

<!-- not run: it would fail, and says why -->
```python
raise SystemExit(3)
```

```console
$ echo "wrote 3 files in 0.25 s"
wrote 3 files in 1.5 s
$ cat missing.txt 2>/dev/null || { echo "Error: missing.txt not found"; exit 1; }
Error: missing.txt not found
```

```text
not a language that runs
```
"""


def run(tmp_path: Path, text: str) -> list:
    page = tmp_path / "page.md"
    page.write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    return Session(work, tmp_path).run_page(page)


def test_a_page_whose_blocks_work_passes(tmp_path):
    assert run(tmp_path, PAGE) == []


def test_a_broken_python_block_fails(tmp_path):
    failures = run(tmp_path, PAGE.replace('print("fine")', "print(undefined_name)"))
    assert len(failures) == 1 and "page.md:3 (python)" in failures[0] and "NameError" in failures[0]


def test_a_broken_bash_block_fails(tmp_path):
    failures = run(tmp_path, PAGE.replace("```python\nprint", "```bash\nfalse\necho").replace('("fine")', " fine"))
    assert len(failures) == 1 and "(bash): exit status 1" in failures[0]


def test_console_output_other_than_shown_fails(tmp_path):
    failures = run(tmp_path, PAGE.replace('echo "wrote 3 files', 'echo "read 3 files'))
    assert len(failures) == 1 and "the output differs" in failures[0]


def test_a_command_that_should_fail_but_succeeds_fails(tmp_path):
    failures = run(tmp_path, PAGE.replace("cat missing.txt", "true"))
    assert len(failures) == 1 and "exit status 0" in failures[0]


def test_markers_are_read(tmp_path):
    (tmp_path / "page.md").write_text(PAGE)
    found = blocks(tmp_path / "page.md")
    assert [(b.language, b.runs) for b in found] == [
        ("python", True),
        ("python", False),
        ("console", True),
        ("text", False),
    ]
    assert found[1].not_run == "it would fail, and says why"


def test_output_matching():
    assert output_matches(["wrote a.onnx  (1.3 MB, error 3.6e-07)"], ["wrote a.onnx (2.5 MB, error 1e-06)"])
    assert not output_matches(["64 samples, seed 0"], ["64 samples, seed 1"])  # whole numbers are exact
    assert not output_matches(["wrote a.onnx"], ["wrote b.onnx"])
    assert output_matches(["first", "...", "last"], ["first", "x", "y", "last"])
    assert output_matches(["Error: unknown key; valid keys: a, ..."], ["Error: unknown key; valid keys: a, b, c"])
    assert not output_matches(["first", "last"], ["first", "middle", "last"])
