"""normalize=pixel|channel: the encoder sees standardized inputs, fitted on the training split,
saved with the weights, and applied inside the exported graphs, so an app still feeds raw pixels."""

import numpy as np
import torch
from tiny_data import write_tiny_idx

import zoo
from zoo.data import load
from zoo.export.onnx import export_run
from zoo.export.runtime import Encoder
from zoo.train.loop import train
from zoo.train.run_folder import load_run


def test_a_pixel_standardized_run_fits_its_statistics_and_exports_them(tmp_path):
    write_tiny_idx(tmp_path / "mnist", n_train=64, n_test=32)
    run_dir = train("deep-ae", tmp_path / "run", data_dir=tmp_path / "mnist", sets={"normalize": "pixel"}, epochs=1)
    model = load_run(run_dir).model
    train_pixels = torch.from_numpy(np.asarray(load(zoo.get_dataset("mnist"), tmp_path / "mnist").train)).float() / 255
    # The held-out 5% is not trained on; the statistics come from the rest of the split.
    assert float((model.input_mean.flatten() - train_pixels.mean(0).flatten()).abs().max()) < 0.05
    assert float(model.input_std.min()) >= 0.05  # a constant pixel does not divide by zero
    export_run(run_dir, tmp_path / "onnx")
    raw = train_pixels[:5].numpy()
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(raw)).numpy()
        unstandardized = model.__class__.encode(model, torch.from_numpy(raw)).numpy()
    got = Encoder(tmp_path / "onnx" / "encoder.onnx").encode(raw)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(got, unstandardized, atol=1e-3)  # the graph does standardize


def test_channel_statistics_have_one_value_per_channel():
    model = zoo.create_model("conv-vae", data_shape=(3, 8, 8), normalize="channel", channels=4, hidden=8, latent=2)
    x = torch.rand(50, 3, 8, 8) * torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    model.fit_input_normalization(x)
    assert model.input_mean.shape == (3, 1, 1)
    torch.testing.assert_close(model.input_mean.flatten(), x.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
