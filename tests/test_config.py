import pytest

import zoo
from zoo.core.config import make_config, parse_sets, split_overrides
from zoo.plugins.deep_ae import DeepAEConfig
from zoo.train.loop import TrainConfig


def test_strings_from_the_command_line_are_converted_by_the_default_type():
    cfg = make_config(DeepAEConfig, parse_sets(["latent=8", "hidden=[128, 32]"]))
    assert cfg.latent == 8 and cfg.hidden == (128, 32)
    assert make_config(TrainConfig, {"lr": "0.01", "compile": "true"}).lr == 0.01


@pytest.mark.parametrize("text, widths", [("64", (64,)), ("64,32", (64, 32)), ("[64, 32]", (64, 32)), ("[]", ())])
def test_a_list_setting_takes_one_number_or_a_comma_list_without_brackets(text, widths):
    """`--set hidden=64` once crashed with a traceback ('int' object is not iterable)."""
    assert make_config(DeepAEConfig, {"hidden": text}).hidden == widths


@pytest.mark.parametrize(
    "sets, message",
    [
        ({"latnet": "8"}, "valid keys: hidden, latent"),
        ({"latent": "eight"}, "not a valid int"),
        ({"latent": 2.5}, "must be a int"),
        ({"hidden": "64,,"}, "not a valid tuple"),
        ({"hidden": '{"a": 1}'}, "not a valid tuple"),
    ],
)
def test_bad_settings_are_one_clear_error(sets, message):
    with pytest.raises(zoo.ZooUsageError, match=message):
        make_config(DeepAEConfig, sets)


def test_set_keys_route_to_the_model_then_the_training_config():
    model_sets, train_sets = split_overrides({"latent": "3", "grad_clip": "1"}, DeepAEConfig, TrainConfig)
    assert model_sets == {"latent": "3"} and train_sets == {"grad_clip": "1"}
    with pytest.raises(zoo.ZooUsageError, match="unknown setting 'nope'.*latent.*grad_clip"):
        split_overrides({"nope": "1"}, DeepAEConfig, TrainConfig)


def test_set_needs_key_equals_value():
    with pytest.raises(zoo.ZooUsageError, match="key=value"):
        parse_sets(["latent"])
