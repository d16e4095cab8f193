"""Layers, losses and their base classes: the engine turned into trainable MLPs.

``mg.nn.Module`` (in :mod:`minigrad.nn.module`) finds its parameters by walking
its attributes; :mod:`minigrad.nn.layers` has ``Linear``, the activations,
``Sequential`` and ``MLP``; :mod:`minigrad.nn.losses` the losses. ``mg.nn.save``
and ``mg.nn.load`` are the checkpoint functions of :mod:`minigrad.checkpoint`.
"""

from minigrad.checkpoint import load, save
from minigrad.nn import utils as utils  # mg.nn.utils: gradient clipping
from minigrad.nn.layers import MLP, Linear, ReLU, Sequential, Sigmoid, Tanh
from minigrad.nn.losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from minigrad.nn.module import Module, Parameter

__all__ = [
    "Parameter",
    "Module",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Sequential",
    "MLP",
    "mse_loss",
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "save",
    "load",
]
