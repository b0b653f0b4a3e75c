"""A run's pictures show colour images in colour and non-square images unstretched."""

import numpy as np
from image_folders import write_images
from PIL import Image

from zoo.data.by_path import make_request
from zoo.train.loop import train


def test_colour_non_square_run_draws_rgb_grids_of_its_aspect(tmp_path):
    write_images(tmp_path / "d" / "a", 8, size=(12, 20), seed=1)
    write_images(tmp_path / "d" / "b", 8, size=(12, 20), seed=2)
    run = train(
        "deep-ae",
        tmp_path / "run",
        data=make_request(tmp_path / "d", test_fraction=0.25),
        epochs=1,
        sets={"hidden": (8,)},
    )
    with Image.open(run / "recon.png") as recon, Image.open(run / "samples.png") as samples:
        assert recon.mode == "RGB" and samples.mode == "RGB"
        # 4 test images: two columns, originals over reconstructions, 2-pixel gaps, drawn at twice the size.
        assert recon.size == (2 * (2 * (20 + 2) + 2), 2 * (4 * (12 + 2) + 2))
        pixels = np.asarray(recon).astype(int)
        assert np.abs(pixels[..., 0] - pixels[..., 1]).max() > 0  # colour, not grey
        assert samples.size == (2 * (8 * (20 + 2) + 2), 2 * (8 * (12 + 2) + 2))


def test_latent_plot_names_a_folders_labels(tmp_path, monkeypatch):
    import matplotlib.axes

    legends = []
    real_legend = matplotlib.axes.Axes.legend
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "legend",
        lambda self, *a, **k: legends.append([t.get_text() for t in real_legend(self, *a, **k).get_texts()]),
    )
    write_images(tmp_path / "d" / "cats", 6, size=(8, 8), seed=1)
    write_images(tmp_path / "d" / "dogs", 6, size=(8, 8), seed=2)
    write_images(tmp_path / "d", 2, size=(8, 8), seed=3)  # no label
    train(
        "deep-ae",
        tmp_path / "run",
        data=make_request(tmp_path / "d", test_fraction=0.5),
        epochs=1,
        sets={"hidden": (8,)},
    )
    assert ["(no label)", "cats", "dogs"] in [sorted(names) for names in legends]  # the latent plot's legend
