"""`zoo export`: every registered model, briefly trained, exports to three valid ONNX files that
onnxruntime runs like PyTorch; bad run folders and failing checks leave nothing on disk."""

import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers, whatever pytest's import mode
from export_helpers import exported, hand_made_run, leftovers  # noqa: E402

import zoo  # noqa: E402
from zoo.cli import cli  # noqa: E402
from zoo.export.onnx import RANDOM_OPS, export_run  # noqa: E402
from zoo.export.parts import PART_NAMES as PARTS  # noqa: E402
from zoo.train.run_folder import load_run  # noqa: E402

MODELS = zoo.list_models()
BATCHES = (1, 2, 37)
JSON_KEYS = ("zoo.data_shape", "zoo.latent_shape", "zoo.prior", "zoo.config")
ALL_KEYS = ("zoo.model", "zoo.part", *JSON_KEYS, "zoo.dataset", "zoo.version")


@pytest.fixture(scope="module", params=MODELS)
def export(request, tmp_path_factory):
    return {"name": request.param, **exported(request.param, tmp_path_factory)}


def metadata(path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_every_part_is_a_valid_self_contained_file(export):
    run_files = sorted(p.name for p in export["run"].iterdir())
    assert not [f for f in run_files if f.endswith(".data") or f.endswith(".tmp")], run_files
    for part in PARTS:
        path = export[part]
        assert path.name == f"{part}.onnx" and path.parent == export["run"]
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(str(path), full_check=True)
        assert not [t.name for t in model.graph.initializer if onnx.external_data_helper.uses_external_data(t)]
        assert model.opset_import[0].version >= 18
        ops = {n.op_type for n in model.graph.node} | {n.op_type for f in model.functions for n in f.node}
        assert not ops & RANDOM_OPS, f"{part} has random nodes"
        assert path.stat().st_size < 2**31


def test_inputs_outputs_and_dynamic_batch(export):
    run = load_run(export["run"])
    model = run.model
    code_names = list(model.encoder_outputs(torch.rand(2, *model.data_shape)).keys())
    expected = {
        "encoder": (("x", list(model.data_shape)), [(n, list(model.latent_shape)) for n in code_names]),
        "decoder": (("z", list(model.latent_shape)), [("x_hat", list(model.data_shape))]),
        # The generator's noise: one normal per latent dimension, or the model's own noise_dim.
        "generator": (("eps", [model.noise_dim(run.prior)]), [("x_hat", list(model.data_shape))]),
    }
    for part, ((in_name, in_shape), outputs) in expected.items():
        graph = onnx.load(str(export[part])).graph
        (inp,) = graph.input
        assert inp.name == in_name and dims(inp)[1:] == in_shape
        assert isinstance(dims(inp)[0], str), f"{part}: batch dimension is fixed: {dims(inp)}"
        assert [(o.name, dims(o)[1:]) for o in graph.output] == outputs
        assert all(isinstance(dims(o)[0], str) for o in graph.output)


def test_metadata_has_every_zoo_key(export):
    run = load_run(export["run"])
    latent_dim = math.prod(run.model.latent_shape)
    for part in PARTS:
        meta = metadata(export[part])
        assert set(ALL_KEYS) <= set(meta), f"{part}: missing {set(ALL_KEYS) - set(meta)}"
        parsed = {k: json.loads(meta[k]) for k in JSON_KEYS}  # each must be valid JSON
        assert meta["zoo.model"] == export["name"] and meta["zoo.part"] == part
        assert meta["zoo.dataset"] == run.config.dataset and meta["zoo.version"] == zoo.__version__
        assert parsed["zoo.data_shape"] == list(run.model.data_shape)
        assert parsed["zoo.latent_shape"] == list(run.model.latent_shape)
        assert parsed["zoo.config"] == run.config.model_config
        prior, described = parsed["zoo.prior"], run.prior.describe()
        assert prior["kind"] == described["kind"]
        np.testing.assert_allclose(prior["mean"], described["mean"], rtol=1e-6, atol=1e-7)
        assert len(prior["std"]) == latent_dim and all(s > 0 for s in prior["std"])
        noise_dim = run.model.noise_dim(run.prior)
        assert prior.get("noise_dim") == (noise_dim if part == "generator" and noise_dim != latent_dim else None)
    # The decoder carries the full covariance factor, so sampling it matches the generator.
    decoder_prior = json.loads(metadata(export["decoder"])["zoo.prior"])
    np.testing.assert_allclose(decoder_prior["scale_tril"], described["scale_tril"], rtol=1e-6, atol=1e-7)


def test_onnxruntime_matches_pytorch(export):
    """Independent of the exporter's own check: the files on disk against a freshly loaded run."""
    run = load_run(export["run"])
    model, prior = run.model, run.prior
    gen = torch.Generator().manual_seed(123)
    worst = {}
    for part in PARTS:
        session = ort.InferenceSession(str(export[part]), providers=["CPUExecutionProvider"])
        for batch in BATCHES:
            eps = torch.randn(batch, getattr(prior, "noise_dim", math.prod(model.latent_shape)), generator=gen)
            with torch.no_grad():
                if part == "encoder":
                    x = torch.rand(batch, *model.data_shape, generator=gen)
                    inputs, want = {"x": x}, list(model.encoder_outputs(x).values())
                elif part == "decoder":
                    z = prior(eps).view(batch, *model.latent_shape)
                    inputs, want = {"z": z}, [model.decode(z)]
                else:
                    eps = torch.randn(batch, model.noise_dim(prior), generator=gen)
                    inputs, want = {"eps": eps}, [model.generate(eps, prior)]
            got = session.run(None, {k: v.numpy() for k, v in inputs.items()})
            for have, expected in zip(got, want, strict=True):
                assert have.shape == tuple(expected.shape)
                worst[part] = max(worst.get(part, 0.0), float(np.abs(have - expected.numpy()).max()))
    print(f"{export['name']}: max abs error onnxruntime vs PyTorch {worst}")
    assert all(error <= 1e-4 for error in worst.values()), worst
    # What the exporter measured on its own batches is within the same tolerance.
    assert all(a.max_abs_error <= 1e-4 for a in export["artifacts"])


def test_encoder_and_decoder_reproduce_zoo_eval(export):
    """encoder.onnx then decoder.onnx in onnxruntime give `zoo eval`'s test-split reconstruction error."""
    from zoo.data import as_float
    from zoo.evaluate.metrics import eval_splits, evaluate
    from zoo.export.runtime import Decoder, Encoder

    run = load_run(export["run"])
    expected = evaluate(export["run"])["mse"]
    # zoo eval uses the run's own subset of the test split, binarized if the run trained binarized.
    x = as_float(eval_splits(run).test).numpy()
    x_hat = Decoder(export["decoder"]).decode(Encoder(export["encoder"]).encode(x))
    mse = float(np.mean((x_hat.astype(np.float64) - x) ** 2))
    assert mse == pytest.approx(expected, rel=1e-4), (mse, expected)


def test_cli_export_prints_what_it_wrote(tmp_path, tmp_path_factory, capfd):
    run = exported("pca-ae", tmp_path_factory)["run"]
    capfd.readouterr()
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(tmp_path / "out"), "--opset", "20"])
    assert result.exit_code == 0, result.output
    assert capfd.readouterr() == ("", ""), "the exporter printed around CliRunner's capture"
    lines = result.output.strip().splitlines()
    # A trained run has an anomaly threshold, so its scorer is the fourth file.
    assert len(lines) == 4 and all(line.startswith("wrote ") and "B," in line for line in lines), result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
        "generator.onnx",
        "scorer.onnx",
    ]
    assert onnx.load(str(tmp_path / "out" / "generator.onnx")).opset_import[0].version == 20


# --- what must fail, cleanly --------------------------------------------------------------------


def broken_run(tmp_path, tmp_path_factory, damage) -> Path:
    source = exported("pca-ae", tmp_path_factory)["run"]
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, run / name)
    damage(run)
    return run


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def wrong_shape(run: Path) -> None:
    config = json.loads((run / "config.json").read_text())
    config["model_config"]["latent"] += 1
    (run / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda run: (run / "model.safetensors").unlink(), "missing"),
        (lambda run: (run / "model.safetensors").write_bytes(b"not safetensors at all"), "corrupt"),
        (lambda run: truncate(run / "model.safetensors"), "corrupt"),
        (wrong_shape, "does not fit"),
        (lambda run: (run / "config.json").write_text("{not json"), "corrupt"),
    ],
    ids=["missing-weights", "garbage-weights", "truncated-weights", "weights-of-another-config", "corrupt-config"],
)
def test_bad_run_folder_is_one_error_and_no_files(tmp_path, tmp_path_factory, damage, message):
    run = broken_run(tmp_path, tmp_path_factory, damage)
    with pytest.raises(zoo.ZooError, match=message):
        export_run(run)
    assert leftovers(run) == []
    result = CliRunner().invoke(cli, ["export", str(run)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert leftovers(run) == []


def test_missing_run_folder_and_bad_opset(tmp_path, tmp_path_factory):
    with pytest.raises(zoo.ZooError, match="not a run folder"):
        export_run(tmp_path / "nowhere")
    run = exported("pca-ae", tmp_path_factory)["run"]
    with pytest.raises(zoo.ZooError, match="opset must be between 18"):
        export_run(run, tmp_path / "out", opset=13)
    assert not (tmp_path / "out").exists()


# Models that only exist in these tests, registered through the same hook a plugin uses.


@dataclass
class TinyConfig:
    latent: int = 2


class Tiny(zoo.AutoEncoder):
    def __init__(self, config, data_shape):
        super().__init__(config, data_shape)
        self.latent_shape = (config.latent,)
        self.enc = nn.Linear(self.data_dim, config.latent)
        self.dec = nn.Linear(config.latent, self.data_dim)

    def encode(self, x):
        return self.enc(x.flatten(1))

    def decode(self, z):
        return self.dec(z).view(-1, *self.data_shape)


class ExportsDifferently(Tiny):
    """Its exported graph disagrees with eager PyTorch by 1e-3: the onnxruntime check must catch it."""

    def decode(self, z):
        out = super().decode(z)
        return out + 1e-3 if torch.compiler.is_exporting() else out


class RandomDecoder(Tiny):
    """Puts a RandomNormalLike node into the graph; it adds nothing, so only the graph check sees it."""

    def decode(self, z):
        out = super().decode(z)
        return out + 0.0 * torch.randn_like(out)


class ExportTestPlugin:
    @zoo.hookimpl
    def register_models(self, register):
        for name, cls in [("test-mismatch", ExportsDifferently), ("test-random", RandomDecoder)]:
            register(zoo.ModelSpec(name=name, config=TinyConfig, build=cls, default_dataset="points3d", summary=name))


@pytest.fixture
def test_models():
    from zoo.core.registry import register_plugin, unregister_plugin

    register_plugin(ExportTestPlugin(), name="export-test-models")
    yield
    unregister_plugin("export-test-models")


def test_failed_validation_reports_the_error_and_writes_nothing(tmp_path, test_models):
    run = hand_made_run(tmp_path / "run", "test-mismatch", zoo.create_model("test-mismatch"), dataset="points3d")
    # An earlier export's files stay exactly as they were: the encoder passes its checks, but is
    # not renamed into place because the decoder fails.
    (run / "encoder.onnx").write_bytes(b"old encoder")
    with pytest.raises(zoo.ZooError, match="max abs error 0.001"):
        export_run(run, tmp_path / "new" / "out")
    assert not (tmp_path / "new" / "out").exists()  # a folder made for the export goes again
    with pytest.raises(zoo.ZooError) as info:
        export_run(run)
    message = str(info.value)
    assert "decoder.onnx" in message and "max abs error 0.001" in message and "\n" not in message
    assert leftovers(run) == ["encoder.onnx"] and (run / "encoder.onnx").read_bytes() == b"old encoder"


def test_random_nodes_are_rejected(tmp_path, test_models):
    run = hand_made_run(tmp_path / "run", "test-random", zoo.create_model("test-random"), dataset="points3d")
    result = CliRunner().invoke(cli, ["export", str(run)])
    assert result.exit_code == 1 and "random nodes (RandomNormalLike)" in result.output, result.output
    assert leftovers(run) == []
