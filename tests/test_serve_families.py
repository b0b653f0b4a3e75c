"""`zoo serve` (torch blocked) serves the generators whose noise is wider than their code: a
Gaussian-mixture sampler (rae) and a two-layer one (hvae) answer with what the torch-free runtime
computes from the same noise."""

import numpy as np
import pytest
from test_serve_helpers import Server, exported_run, infer_json

from zoo.export.runtime import Generator

FAMILIES = {
    "rae": ({"hidden": (16,), "latent": 4, "components": 3}, 5),  # latent + 1: the component's draw
    "hvae": ({"hidden1": 16, "latent1": 6, "hidden2": 8, "latent2": 3}, 9),  # z2, then z1 given z2
}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_generator_with_its_own_noise_width_is_served(family, tmp_path, tmp_path_factory):
    config, noise_dim = FAMILIES[family]
    run = exported_run(tmp_path_factory, f"{family}-small", family, **config)
    server = Server(run, log=tmp_path / "serve.log")
    try:
        meta = server.client.get(f"/v2/models/{family}-small-generator").json()
        assert meta["inputs"] == [{"name": "eps", "datatype": "FP32", "shape": [-1, noise_dim]}]
        eps = np.random.default_rng(0).standard_normal((3, noise_dim)).astype(np.float32)
        answer = server.client.post(f"/v2/models/{family}-small-generator/infer", json=infer_json(eps, "eps"))
        assert answer.status_code == 200, answer.text
        (output,) = answer.json()["outputs"]
        assert output["shape"] == [3, 1, 28, 28]
        local = Generator(run / "generator.onnx").generate(eps)
        np.testing.assert_allclose(np.asarray(output["data"], np.float32).reshape(local.shape), local, atol=1e-6)
        narrow = server.client.post(f"/v2/models/{family}-small-generator/infer", json=infer_json(eps[:, :-1], "eps"))
        assert narrow.status_code == 400
    finally:
        server.stop()
