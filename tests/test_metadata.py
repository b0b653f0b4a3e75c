"""``zoo.export.metadata``: what the exporter writes, the runtime and the server read back as it was
written, and a file with a missing or malformed entry is refused with the key named."""

import json

import numpy as np
import pytest

import zoo
from zoo.export import metadata

PRIOR = {"kind": "gaussian", "mean": [0.5, -1.0], "std": [2.0, 1.118], "scale_tril": [[2.0, 0.0], [1.0, 0.5]]}
VALUES = {
    "model": "vae",
    "data_shape": (1, 28, 28),
    "latent_shape": (2,),
    "config": {"latent": 2, "hidden": 400},
    "dataset": "mnist",
    "version": "1.2.3",
}


def written(part: str = "decoder", **changes) -> dict:
    """The props the exporter would write for one part, with ``changes`` replacing entries."""
    props = metadata.build(part=part, prior=metadata.prior_for_part(PRIOR, part), **VALUES)
    return {**props, **changes}


@pytest.mark.parametrize("part", ["encoder", "decoder", "generator"])
def test_what_is_written_is_read_back(part):
    props = written(part)
    assert list(props) == list(metadata.KEYS)
    assert all(isinstance(value, str) for value in props.values())  # ONNX metadata holds text only
    meta = metadata.parse(props, "vae.onnx")
    assert meta == {
        "zoo.model": "vae",
        "zoo.part": part,
        "zoo.data_shape": [1, 28, 28],
        "zoo.latent_shape": [2],
        "zoo.prior": metadata.prior_for_part(PRIOR, part),
        "zoo.config": VALUES["config"],
        "zoo.dataset": "mnist",
        "zoo.version": "1.2.3",
    }
    # The server hands out the entries as the exact text in the file, the optional ones included.
    assert metadata.zoo_entries({**props, "producer": "other"}) == props
    optional = {metadata.PREPROCESS: '{"size": [28, 28]}', metadata.SCORE: '{"threshold": 1.0}'}
    assert metadata.zoo_entries({**props, **optional, "producer": "other"}) == {**props, **optional}


def test_only_the_decoder_carries_the_covariance_factor():
    assert metadata.prior_for_part(PRIOR, "decoder") == PRIOR
    assert "scale_tril" not in metadata.prior_for_part(PRIOR, "encoder")
    generator = metadata.prior_for_part(PRIOR, "generator")
    assert "scale_tril" not in generator and generator["folded_into_graph"] is True


@pytest.mark.parametrize("key", metadata.KEYS)
def test_a_missing_key_is_named(key):
    props = written()
    del props[key]
    with pytest.raises(zoo.ZooError, match=f"^m.onnx: not an autoencoder-zoo artifact \\(no {key} metadata\\)"):
        metadata.parse(props, "m.onnx")


@pytest.mark.parametrize("key", metadata.JSON_KEYS)
def test_bad_json_is_named(key):
    with pytest.raises(zoo.ZooError, match=f"^m.onnx: corrupt {key} metadata \\(not JSON\\)$"):
        metadata.parse(written(**{key: "{not json"}), "m.onnx")


@pytest.mark.parametrize("shape", [[], ["x"], [0], [True], {"a": 1}, 3])
@pytest.mark.parametrize("key", ["zoo.data_shape", "zoo.latent_shape"])
def test_a_shape_that_is_not_positive_ints_is_named(key, shape):
    with pytest.raises(zoo.ZooError, match=f"^m.onnx: corrupt {key} metadata .*expected a list of positive ints"):
        metadata.parse(written(**{key: json.dumps(shape)}), "m.onnx")


def test_prior_sample_reads_the_prior_written():
    eps = np.random.default_rng(0).standard_normal((20000, 2), dtype=np.float32)
    decoder_prior = metadata.parse(written("decoder"), "m.onnx")["zoo.prior"]
    z = metadata.prior_sample(decoder_prior, eps)
    np.testing.assert_allclose(z.mean(0), PRIOR["mean"], atol=0.05)
    np.testing.assert_allclose(np.cov(z.T), np.array(PRIOR["scale_tril"]) @ np.array(PRIOR["scale_tril"]).T, atol=0.1)
