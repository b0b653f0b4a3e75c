"""The pythae side-by-side report (benchmarks.quality.pythae_side_by_side) reads right: one row per
family and library, each figure the mean ± sd over the seeds run, and the codebook column where a
family has one. (The benchmark itself needs pythae's own environment, which a fresh clone lacks.)"""

import numpy as np

from benchmarks.quality.pythae_side_by_side import frechet, markdown

SETTINGS = {"subset": 1000, "epochs": 2, "batch": 100, "lr": 1e-3, "seeds": [0, 1], "images": 300}


def row(family, library, seed, frechet_distance, **extra):
    return {
        "family": family,
        "library": library,
        "seed": seed,
        "seconds_per_epoch": 1.0 + seed,
        "test_mse": 0.02,
        "frechet": frechet_distance,
        **extra,
    }


def report(rows) -> str:
    result = {
        "pythae_version": "0.1.2",
        "machine": {"cpu": "test cpu"},
        "settings": {**SETTINGS, "nll_images": 200, "k": 1000},
        "classifier_accuracy": 0.9,
        "rows": rows,
    }
    return markdown(result)


def test_seeds_are_one_row_of_means_and_standard_deviations():
    text = report(
        [
            row("beta-vae", "zoo", 0, 6.0, nll=118.0),
            row("beta-vae", "pythae", 0, 8.0, nll=119.0),
            row("beta-vae", "zoo", 1, 8.0, nll=120.0),
            row("beta-vae", "pythae", 1, 8.0, nll=119.0),
        ]
    )
    assert "seeds 0, 1 (mean ± sd)" in text
    # sd of (6, 8) is 1.414; of (8, 8) is 0; the time is the mean of 1 and 2 s.
    assert "| beta-vae | zoo | 1.50 | 1.50 | 0.02 ± 0 | 7 ± 1.4 | 119 ± 1.4 | - |" in text
    assert "| beta-vae | pythae | 1.50 | 1.50 | 0.02 ± 0 | 8 ± 0 | 119 ± 0 | - |" in text


def test_a_codebook_family_shows_the_codes_each_seed_used():
    text = report([row("vq-vae", "zoo", 0, 12.0, codes_used=60), row("vq-vae", "zoo", 1, 13.0, codes_used=58)])
    assert text.rstrip().endswith("| 60 / 58 |")


def test_frechet_distance_is_zero_for_one_sample_set_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 8))
    assert abs(frechet(a, a)) < 1e-6
    assert 3.5 < frechet(a, a + 2 * np.eye(8)[0]) < 4.5  # |mu_a - mu_b|^2 = 4, the same spread
