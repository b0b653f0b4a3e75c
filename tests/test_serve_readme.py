"""The README's "Serve over HTTP" Python client runs as written against a real server."""

import re
from pathlib import Path

from test_serve_helpers import Server, vae_run

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_client_runs(tmp_path_factory, tmp_path):
    text = README.read_text().split("## Serve over HTTP", 1)[1]
    source = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert re.findall(r"^(?:import|from) (\w+)", source, re.M) == ["json", "httpx", "numpy"]
    server = Server(vae_run(tmp_path_factory), "--quiet", log=tmp_path / "serve.log")
    try:
        namespace = {}
        exec(compile(source.replace("http://127.0.0.1:8000", server.url), "README.md", "exec"), namespace)
        assert namespace["images"].shape == (16, 1, 28, 28)
    finally:
        assert server.stop() == 0
