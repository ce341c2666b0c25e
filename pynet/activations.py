"""pynet.activations — the activation functions: ``ACTIVATION`` (each member equal to its name, so
the homework's ``if a == 'LOGISTIC':`` works), the module constants, and ``activate_matrix`` /
``gradient_matrix`` over the C kernels."""
import enum

import numpy as np

from ._native import check, ffi, lib
from .matrix import as_matrix

__all__ = ["ACTIVATION", "HIDDEN_ACTIVATIONS", "activate_matrix", "gradient_matrix"]


def _activation_names():
    """The C core's activation names in enum order: pn_activation_name(0), (1), ... until NULL."""
    names = []
    while True:
        name = lib.pn_activation_name(len(names))
        if name == ffi.NULL:
            return names
        names.append(ffi.string(name).decode("ascii"))


class _Activation(enum.IntEnum):
    """The activation functions; the names and values are the C core's (csrc/activations.c's
    table, read through pn_activation_name), so a new activation needs no edit here."""

    def __repr__(self):
        return self.name

    # Homework code compares activations with their names (``if a == 'LOGISTIC':``): a constant equals
    # its name as well as its C value, and hashes like its name, so dicts keyed by names find it.
    def __eq__(self, other):
        if isinstance(other, str):
            return self._name_ == other   # enum's .name is a property: slow in a student's element loop
        return int.__eq__(self, other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.name)


ACTIVATION = _Activation("ACTIVATION", [(name, i) for i, name in enumerate(_activation_names())],
                         module=__name__, qualname="ACTIVATION")
ACTIVATION.__doc__ = _Activation.__doc__
# One module-level constant per activation (LINEAR, LOGISTIC, RELU, LRELU, SOFTMAX, TANH, ...).
globals().update(ACTIVATION.__members__)
# The activations a hidden layer may use: all but SOFTMAX, the output layer's (it works on whole rows).
__all__ += list(ACTIVATION.__members__)
HIDDEN_ACTIVATIONS = tuple(a for a in ACTIVATION if a.name != "SOFTMAX")


def _activation(a):
    """An ACTIVATION from a constant, its integer value or its name ('RELU', 'relu')."""
    valid = ", ".join(x.name for x in ACTIVATION)
    if isinstance(a, str):
        try:
            return ACTIVATION[a.strip().upper()]
        except KeyError:
            raise ValueError("unknown activation %r; valid: %s" % (a, valid)) from None
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        try:
            return ACTIVATION(int(a))
        except ValueError:
            raise ValueError("unknown activation %r; valid: %s" % (a, valid)) from None
    raise ValueError("unknown activation %r; valid: %s (or their names as strings)" % (a, valid))


def activate_matrix(m, a):
    """Apply activation a to every element of m, in place (softmax: to every row)."""
    a = _activation(a)
    m = as_matrix(m, "m", writable=True)
    check(lib.activate_matrix(m._m[0], a))


def gradient_matrix(m, a, d):
    """Multiply d, in place, by the derivative of activation a taken at the outputs m."""
    a = _activation(a)
    m, d = as_matrix(m, "m"), as_matrix(d, "d", writable=True)
    check(lib.gradient_matrix(m._m[0], a, d._m[0]))
