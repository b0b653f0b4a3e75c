"""A run remembers which files it was trained on: --resume, zoo eval and zoo score of its own data
refuse a folder whose files changed, in one line, instead of drawing a new test split from them
(which could hold images the run trained on)."""

from helpers import assert_one_line_error, run_zoo
from image_folders import write_images


def test_a_changed_folder_is_one_clear_error_for_resume_eval_and_score(tmp_path):
    write_images(tmp_path / "photos", 20, size=(8, 8), mode="L")
    run = tmp_path / "run"
    trained = run_zoo("train", "deep-ae", "--data", tmp_path / "photos", "--epochs", "1", "--out", run)
    assert trained.returncode == 0, trained.stderr
    assert run_zoo("eval", run).returncode == 0
    write_images(tmp_path / "photos", 1, size=(8, 8), mode="L", seed=7, start=100)  # one more file
    for command in (("eval", run), ("score", run), ("train", "--resume", run, "--epochs", "2")):
        assert_one_line_error(run_zoo(*command), "files changed since the run was trained", "train a new run")
