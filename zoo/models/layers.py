"""Small building blocks shared by several architectures."""

from torch import nn


def mlp(sizes, activation=nn.ReLU, last_activation=None) -> nn.Sequential:
    """Linear layers through ``sizes`` with ``activation`` between them.

    The last layer gets ``last_activation`` (none by default): a code layer or a logit layer must
    not be squashed by a ReLU, which would kill latent dimensions.
    """
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        if not last:
            layers.append(activation())
        elif last_activation is not None:
            layers.append(last_activation())
    return nn.Sequential(*layers)
