"""The Python client of docs/serving.md ("Clients") runs as written against a real server."""

import re
from pathlib import Path

from test_serve_helpers import Server, vae_run

PAGE = Path(__file__).resolve().parents[1] / "docs" / "serving.md"


def test_readme_python_client_runs(tmp_path_factory, tmp_path):
    text = PAGE.read_text().split("## Clients", 1)[1]
    source = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert re.findall(r"^(?:import|from) (\w+)", source, re.M) == ["json", "httpx", "numpy"]
    server = Server(vae_run(tmp_path_factory), "--quiet", log=tmp_path / "serve.log")
    try:
        namespace = {}
        exec(compile(source.replace("http://127.0.0.1:8000", server.url), "docs/serving.md", "exec"), namespace)
        assert namespace["images"].shape == (16, 1, 28, 28)
    finally:
        assert server.stop() == 0
