"""Every registered architecture trains on every image shape users bring, or refuses it before
training in one line naming its rule (parametrized over the registry, as timm's tests are)."""

import json

import numpy as np
import pytest

import zoo
from zoo.data.by_path import make_request
from zoo.train.loop import train

SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (3, 48, 64), (1, 30, 30), (12,)]
# Small widths keep the 24+ one-epoch runs quick; a model not listed trains with its defaults.
SMALL = {
    "conv-ae": {"hidden": 8},
    "conv-vae": {"channels": 4, "hidden": 16, "latent": 4},
    "vae": {"hidden": 16, "latent": 4},
    "deep-ae": {"hidden": (16,)},
    "denoiser": {"hidden": (16,)},
    "beta-vae": {"hidden": 16, "latent": 4},
    "wae": {"hidden": (16,), "latent": 4},
    "rae": {"hidden": (16,), "latent": 4, "components": 3},
    "aae": {"hidden": (16,), "latent": 4, "discriminator_hidden": 8},
    "vamp": {"hidden": (16,), "latent": 4, "pseudo_inputs": 5},
    "hvae": {"hidden1": 16, "latent1": 8, "hidden2": 8, "latent2": 4},
    "vq-vae": {"channels": 8, "embedding_dim": 4, "codebook_size": 8, "prior_channels": 8, "prior_layers": 1},
}
# The shapes a built-in architecture refuses, and the words of its rule.
REFUSED = {
    ("conv-ae", (1, 30, 30)): "conv-ae needs sides divisible by 4",
    ("conv-vae", (1, 30, 30)): "conv-vae needs sides divisible by 4",
    ("conv-ae", (12,)): "conv-ae needs images",
    ("conv-vae", (12,)): "conv-vae needs images",
    ("vq-vae", (1, 30, 30)): "vq-vae needs sides divisible by 4",
    ("vq-vae", (12,)): "vq-vae needs images",
}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", zoo.list_models())
def test_trains_one_epoch_or_refuses_by_its_rule(tmp_path, name, shape):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 256, (10, *shape), dtype=np.uint8))
    run = tmp_path / "run"
    kwargs = dict(data=make_request(tmp_path / "x.npy"), sets=SMALL.get(name, {}), epochs=1, batch_size=9)
    if (name, shape) in REFUSED:
        with pytest.raises(zoo.ZooUsageError, match=REFUSED[name, shape]):
            train(name, run, **kwargs)
        assert not run.exists()
        return
    train(name, run, **kwargs)
    config = json.loads((run / "config.json").read_text())
    assert config["data_shape"] == list(shape)
    # One epoch per stage (a model with a second stage, such as vq-vae's prior, has two records).
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records and all(np.isfinite(r["train_loss"]) and np.isfinite(r["test_loss"]) for r in records)
