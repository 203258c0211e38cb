"""Issue 18 item 2: ``conv_method="fft"`` honours ``groups``. A grouped or depthwise convolution's operator is
block diagonal over its groups, so its exact spectrum is the union of the groups' operator spectra; checked
against the explicit operator matrix that ``torch.nn.functional.conv2d(..., groups=g)`` applies to every basis
input with circular padding."""

from __future__ import annotations

import numpy as np
import pytest

import hts
from hts import spectra

torch = pytest.importorskip("torch")
F = torch.nn.functional


def explicit_operator_eigenvalues(weight: torch.Tensor, groups: int, n: int) -> np.ndarray:
    """Squared singular values of x ↦ conv2d(circular_pad(x), weight, groups) on n×n inputs, sorted."""
    out_ch, in_per_group, kh, kw = weight.shape
    in_ch = in_per_group * groups
    basis = torch.eye(in_ch * n * n, dtype=torch.float64).reshape(-1, in_ch, n, n)
    padded = F.pad(basis, (kw - 1, 0, kh - 1, 0), mode="circular")
    images = F.conv2d(padded, weight.to(torch.float64), groups=groups)  # (in·n², out, n, n)
    assert images.shape[-2:] == (n, n)
    operator = images.reshape(in_ch * n * n, out_ch * n * n).T.numpy()
    sv = np.linalg.svd(operator, compute_uv=False)
    m = min(operator.shape)
    return np.sort(sv[:m] ** 2)


@pytest.mark.parametrize("in_ch,out_ch,groups,k,n", [
    (16, 16, 16, 3, 4),   # depthwise: the operator has 16·16 = 256 values at n = 4, not 16
    (8, 16, 8, 3, 4),     # depthwise with channel multiplier 2
    (12, 18, 3, 3, 5),    # grouped
    (6, 4, 2, 2, 3),      # grouped, more inputs than outputs per group
    (5, 7, 1, 3, 4),      # dense (unchanged)
])
def test_grouped_operator_spectrum_equals_the_explicit_operator(in_ch, out_ch, groups, k, n):
    torch.manual_seed(in_ch * 100 + groups)
    conv = torch.nn.Conv2d(in_ch, out_ch, k, groups=groups, bias=False)
    expected = explicit_operator_eigenvalues(conv.weight.detach(), groups, n)
    got = spectra.conv_operator_eigenvalues(conv.weight.detach().numpy(), input_size=n, groups=groups)
    assert got.shape == (n * n, groups * min(out_ch // groups, in_ch // groups))
    assert np.all(np.diff(got, axis=1) >= 0)
    flat = np.sort(got, axis=None)
    np.testing.assert_allclose(flat, expected, rtol=1e-10, atol=1e-12 * expected.max())
    # through hts.analyze on the live module: groups come from the module
    a = hts.analyze(torch.nn.Sequential(conv), conv_method="fft", conv_input_size=n, min_evals=1)
    row = [r for r in a.rows if r["layer_type"] == "conv2d"][0]
    assert row["num_evals"] == expected.size and "groups unknown" not in row["reason"]
    np.testing.assert_allclose(np.sort(a.esd(row["layer_id"])), expected, rtol=1e-10, atol=1e-12 * expected.max())
    # float32 precision (with its float64 redo of small tails) agrees too
    a32 = hts.analyze(torch.nn.Sequential(conv), conv_method="fft", conv_input_size=n, min_evals=1,
                      precision="float32")
    ev32 = np.sort(a32.esd(row["layer_id"]))
    np.testing.assert_allclose(ev32, expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_depthwise_is_not_treated_as_dense():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 16, 3, groups=16, bias=False)
    w = conv.weight.detach().numpy()
    dense_guess = spectra.conv_operator_eigenvalues(w, input_size=4)  # the old behaviour: 1 value per frequency
    assert dense_guess.size == 16
    assert spectra.conv_operator_eigenvalues(w, input_size=4, groups=16).size == 256


def test_bare_tensors_say_groups_are_unknown():
    torch.manual_seed(0)
    w = torch.nn.Conv2d(8, 16, 3, bias=False).weight.detach().numpy()
    a = hts.analyze({"conv.weight": w}, conv_method="fft", conv_input_size=4)
    row = a.rows[0]
    assert row["status"] == "success" and "groups unknown" in row["reason"]


def test_bad_groups_are_clear_errors():
    w = np.ones((6, 2, 3, 3))
    with pytest.raises(ValueError, match="do not split into groups=4"):
        spectra.conv_operator_eigenvalues(w, groups=4)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(TypeError, match="groups must be a positive int"):
            spectra.conv_operator_eigenvalues(w, groups=bad)
