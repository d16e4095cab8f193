"""Layers, losses and their base classes: the engine turned into trainable MLPs.

``mg.nn.Module`` (in :mod:`minigrad.nn.module`) finds its parameters and
buffers by walking its attributes; :mod:`minigrad.nn.layers` has ``Linear``,
the activations, ``Dropout``, ``Flatten``, ``Identity``, ``Sequential`` and
``MLP``; :mod:`minigrad.nn.normalization` has ``LayerNorm`` and
``BatchNorm1d``; :mod:`minigrad.nn.init` the initializers;
:mod:`minigrad.nn.losses` the losses. ``mg.nn.save`` and ``mg.nn.load`` are
the checkpoint functions of :mod:`minigrad.checkpoint`.
"""

from minigrad.checkpoint import load, save
from minigrad.nn import init
from minigrad.nn import utils as utils  # mg.nn.utils: gradient clipping
from minigrad.nn.layers import (
    GELU,
    MLP,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from minigrad.nn.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from minigrad.nn.module import Buffer, Module, Parameter
from minigrad.nn.normalization import BatchNorm1d, LayerNorm

__all__ = [
    "Parameter",
    "Buffer",
    "Module",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "LeakyReLU",
    "GELU",
    "Softmax",
    "Identity",
    "Flatten",
    "Dropout",
    "LayerNorm",
    "BatchNorm1d",
    "Sequential",
    "MLP",
    "init",
    "mse_loss",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "save",
    "load",
]
