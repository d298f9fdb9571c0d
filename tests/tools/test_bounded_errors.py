"""An array passed where a class index or a unit belongs is refused in one short line, not with the
array's whole repr (thousands of characters over many lines)."""

import numpy as np
import pytest

import minicnn as mc
from minicnn.errors import MinicnnError


@pytest.mark.parametrize("call", ["class_model", "maximize"])
def test_a_misplaced_array_is_named_not_printed(call):
    net = mc.load("mnist_vgg")
    wrong = np.zeros((1, 1, 28, 28), complex)
    with pytest.raises(MinicnnError) as info:
        if call == "class_model":
            mc.class_model(net, wrong)
        else:
            mc.maximize(net, net.layers[2].name, wrong)
    text = str(info.value)
    assert "\n" not in text and len(text) < 120, text
    assert "ndarray" in text


def test_the_error_class_is_public():
    """A script catches bad input as ``mc.MinicnnError`` (the class every tool raises)."""
    net = mc.load("mnist_vgg")
    with pytest.raises(mc.MinicnnError, match="unknown layer"):
        mc.reconstruct(net, np.zeros((1, 1, 28, 28), np.float32), layer="no_such_layer")
    assert mc.MinicnnError is MinicnnError
