"""A run interrupted the way a user does it: Ctrl-C right after an epoch's checkpoint was saved."""

import pytest

import zoo


def train_until_interrupted(monkeypatch, *args, **kwargs) -> None:
    """``zoo.train.loop.train(*args, **kwargs)``, stopped by a KeyboardInterrupt right after epoch 1 was saved."""
    import zoo.train.loop as loop

    real_save = loop.save_checkpoint

    def save_then_interrupt(*save_args, **save_kwargs):
        real_save(*save_args, **save_kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_interrupt)
    with pytest.raises(zoo.ZooError, match="resume"):
        loop.train(*args, **kwargs)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
