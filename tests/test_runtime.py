"""``zoo.export.runtime`` and ``zoo sample``: exported models run with numpy and onnxruntime only."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # the shared helpers, whatever pytest's import mode
from export_helpers import exported, run_zoo_without_torch  # noqa: E402

import zoo  # noqa: E402
from zoo.cli import cli  # noqa: E402
from zoo.core.image_grid import grid  # noqa: E402
from zoo.export import runtime  # noqa: E402
from zoo.export.runtime import MAX_SAMPLES, Decoder, Encoder, Generator  # noqa: E402

MODELS = zoo.list_models()


@pytest.fixture(scope="module", params=MODELS)
def export(request, tmp_path_factory):
    return exported(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    return exported("vae", tmp_path_factory)


def test_generator_samples_are_a_function_of_the_seed(export):
    gen = Generator(export["generator"])
    a = gen.sample(5, seed=7)
    assert a.dtype == np.float32 and a.shape == (5, *gen.data_shape) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, Generator(export["generator"]).sample(5, seed=7))
    assert not np.array_equal(a, gen.sample(5, seed=8))
    assert gen.sample(1).shape == (1, *gen.data_shape)  # batch 1 runs too


def test_decoder_samples_from_its_metadata_prior_like_the_generator(export):
    """The generator folds the prior into its graph; the decoder applies it from metadata in numpy.
    Given the same seed both must draw the same samples, unless the generator's sampler takes more
    noise than a Gaussian over the code (a mixture, a learned or autoregressive prior: its
    ``noise_dim``); the decoder then draws from the Gaussian its metadata describes."""
    generator, decoder = Generator(export["generator"]), Decoder(export["decoder"])
    from_generator, from_decoder = generator.sample(37, seed=3), decoder.sample(37, seed=3)
    if "noise_dim" in generator.prior:
        assert generator.noise_dim == generator.prior["noise_dim"] != generator.latent_dim
        assert from_decoder.shape == from_generator.shape and np.isfinite(from_decoder).all()
        return
    np.testing.assert_allclose(from_decoder, from_generator, atol=1e-4)


def test_encoder_returns_the_code_and_all_named_outputs(export):
    enc, dec = Encoder(export["encoder"]), Decoder(export["decoder"])
    x = np.random.default_rng(0).random((3, *enc.data_shape), dtype=np.float32)
    outputs = enc.run(x)
    assert list(outputs) == enc.output_names and enc.output_names[0] in ("z", "mu")
    z = enc.encode(x)
    np.testing.assert_array_equal(z, outputs[enc.output_names[0]])
    assert z.shape == (3, *dec.latent_shape)
    assert dec.decode(z).shape == x.shape


def test_large_batches_run_in_chunks(vae):
    """More samples than one onnxruntime call takes: the chunks join up to the same result."""
    gen = Generator(vae["generator"])
    eps = runtime.standard_normal(runtime.CHUNK + 5, gen.latent_dim, seed=1)
    whole = gen.generate(eps)
    assert whole.shape[0] == runtime.CHUNK + 5
    np.testing.assert_allclose(whole[-5:], gen.generate(eps[-5:]), atol=1e-6)


def test_prior_sample_uses_scale_tril_or_else_std():
    eps = runtime.standard_normal(20000, 2, seed=0)
    tril = [[2.0, 0.0], [1.0, 0.5]]
    full = runtime.prior_sample({"mean": [1.0, -1.0], "std": [2.0, 1.118], "scale_tril": tril}, eps)
    np.testing.assert_allclose(full.mean(0), [1.0, -1.0], atol=0.05)
    np.testing.assert_allclose(np.cov(full.T), np.array(tril) @ np.array(tril).T, atol=0.1)
    diagonal = runtime.prior_sample({"mean": [1.0, -1.0], "std": [2.0, 0.5]}, eps)
    np.testing.assert_allclose(diagonal.std(0), [2.0, 0.5], rtol=0.03)


def test_session_is_created_once_and_threads_are_configurable(vae, monkeypatch):
    opened = []
    real = runtime.ort.InferenceSession
    monkeypatch.setattr(runtime.ort, "InferenceSession", lambda *a, **k: opened.append(1) or real(*a, **k))
    gen = Generator(vae["generator"], intra_op_num_threads=1)
    for seed in range(3):
        gen.sample(4, seed=seed)
    art = runtime.load(vae["decoder"], intra_op_num_threads=2)
    art.sample(2)
    assert len(opened) == 2 and isinstance(art, Decoder)
    assert gen.session.get_session_options().intra_op_num_threads == 1
    assert art.session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(zoo.ZooError, match="intra_op_num_threads"):
        Generator(vae["generator"], intra_op_num_threads=-1)


# --- bad inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: np.zeros((2, 19), np.float32), r"z must have shape \[batch, 20\] for this vae decoder, got \[2, 19\]"),
        (lambda: np.zeros((20,), np.float32), r"must have shape \[batch, 20\].*got \[20\]"),
        (lambda: np.zeros((0, 20), np.float32), r"got \[0, 20\]"),
        (lambda: np.zeros((2, 20), np.float64), "z must be float32, got float64"),
        (lambda: np.zeros((2, 20), np.int64), "z must be float32, got int64"),
        (lambda: [[0.0] * 20], "z must be a numpy array of shape \\[batch, 20\\], got list"),
    ],
)
def test_wrong_input_is_one_clear_error(vae, make, message):
    with pytest.raises(zoo.ZooError, match=message):
        Decoder(vae["decoder"]).decode(make())


def test_wrong_encoder_input_names_the_data_shape(vae):
    with pytest.raises(zoo.ZooError, match=r"x must have shape \[batch, 1, 28, 28\].*got \[3, 784\]"):
        Encoder(vae["encoder"]).encode(np.zeros((3, 784), np.float32))


@pytest.mark.parametrize("n", [0, -1, MAX_SAMPLES + 1, 10**12, 2.5, True, "64", None])
def test_sample_count_is_checked(vae, n):
    with pytest.raises(zoo.ZooError, match=f"from 1 to {MAX_SAMPLES}"):
        Generator(vae["generator"]).sample(n)


def test_negative_seed_is_refused(vae):
    with pytest.raises(zoo.ZooError, match="seed must be a non-negative integer"):
        Decoder(vae["decoder"]).sample(2, seed=-1)


def plain_onnx(path: Path, metadata: dict | None = None) -> Path:
    """A valid ONNX model that is not a zoo artifact: one Identity node."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


def test_files_that_are_not_zoo_artifacts(tmp_path, vae):
    with pytest.raises(zoo.ZooError, match="no such file"):
        Generator(tmp_path / "missing.onnx")
    (tmp_path / "garbage.onnx").write_bytes(b"\x00not a protobuf" * 10)
    with pytest.raises(zoo.ZooError, match="not a valid ONNX model"):
        Generator(tmp_path / "garbage.onnx")
    with pytest.raises(zoo.ZooError, match="not an autoencoder-zoo artifact"):
        Generator(plain_onnx(tmp_path / "plain.onnx"))
    with pytest.raises(zoo.ZooError, match="is a zoo generator, not an encoder; open it with Generator"):
        Encoder(vae["generator"])
    meta = {p.key: p.value for p in onnx.load(str(vae["decoder"])).metadata_props}
    broken = plain_onnx(tmp_path / "broken.onnx", {**meta, "zoo.prior": "{not json"})
    with pytest.raises(zoo.ZooError, match="corrupt zoo.prior metadata"):
        Decoder(broken)


def test_runtime_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import zoo.export.runtime, zoo.cli\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n"
        "assert not [m for m in sys.modules if m.startswith('torch.')], 'a torch submodule was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- zoo sample ---------------------------------------------------------------------------------


def test_zoo_sample_without_torch_draws_64_digits(vae, tmp_path):
    first, again, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in [(first, 0), (again, 0), (other, 1)]:
        result = run_zoo_without_torch("sample", vae["generator"], "-n", 64, "--seed", seed, "-o", path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote {path}")
    picture = Image.open(first)
    expected = grid(np.zeros((64, 1, 28, 28), np.float32)).shape  # an 8 x 8 grid of 28 x 28 digits
    assert picture.format == "PNG" and picture.mode == "L"
    assert picture.size == (expected[1] * 2, expected[0] * 2)  # save_grid doubles the pixels
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    # A decoder samples from the prior in its metadata; for a VAE that is N(0, I): the same picture.
    result = run_zoo_without_torch("sample", vae["decoder"], "-o", tmp_path / "d.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "d.png").size == picture.size


@pytest.mark.parametrize(
    "args, message",
    [
        (["-n", "-3"], "-3 is not in the range 1<=x<=4096"),
        (["-n", "0"], "0 is not in the range"),
        (["-n", "100000000"], "100000000 is not in the range"),
        (["--seed", "-1"], "-1 is not in the range x>=0"),
        (["-o", "out.jpg"], "write a .png picture or a .npy array"),
    ],
)
def test_zoo_sample_bad_options(vae, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["sample", str(vae["generator"]), *args], catch_exceptions=False)
    assert result.exit_code != 0 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == [] and not Path("samples.png").exists() and not Path("out.jpg").exists()


def test_zoo_sample_refuses_encoders_and_foreign_files(vae, tmp_path):
    for path, message in [
        (vae["encoder"], "is a zoo encoder; sample from generator.onnx or decoder.onnx"),
        (plain_onnx(tmp_path / "plain.onnx"), "not an autoencoder-zoo artifact"),
    ]:
        out = tmp_path / "x.png"
        result = CliRunner().invoke(cli, ["sample", str(path), "-o", str(out)])
        assert result.exit_code == 1 and result.output.startswith("Error: ") and message in result.output
        assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_zoo_sample_of_non_image_data_writes_npy(tmp_path, tmp_path_factory):
    gen = exported("pca-ae", tmp_path_factory)["generator"]
    result = CliRunner().invoke(cli, ["sample", str(gen), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "not images; write them with -o FILE.npy" in result.output
    assert not (tmp_path / "x.png").exists()
    result = CliRunner().invoke(cli, ["sample", str(gen), "-n", "10", "-o", str(tmp_path / "x.npy")])
    assert result.exit_code == 0, result.output
    data = np.load(tmp_path / "x.npy")
    assert data.shape == (10, 3) and data.dtype == np.float32
    np.testing.assert_array_equal(data, Generator(gen).sample(10, seed=0))
    assert math.isfinite(float(np.abs(data).sum()))
