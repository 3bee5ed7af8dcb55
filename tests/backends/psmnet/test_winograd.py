"""PSMNet's Winograd F(2x2x2, 3x3x3) convolution against the direct one, and where it is used."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from depthapp.backends.psmnet import winograd

needs_kernel = pytest.mark.skipif(not winograd.available(),
                                  reason="needs depthapp's built _winograd extension and an AVX-512 CPU")


@needs_kernel
@pytest.mark.parametrize("cin, cout, size", [(32, 32, (5, 6, 9)), (64, 64, (3, 7, 5)), (16, 64, (4, 4, 4)),
                                             (48, 16, (1, 1, 1)), (32, 16, (2, 3, 1)), (16, 32, (7, 2, 101))])
def test_the_kernel_is_the_convolution_within_float32_rounding(cin, cout, size):
    # Odd sizes leave partial tiles on every side; 101 columns span three bands of tiles.
    generator = torch.Generator().manual_seed(cin + cout + sum(size))
    volume = torch.randn(1, cin, *size, generator=generator, dtype=torch.float64)
    weight = torch.randn(cout, cin, 3, 3, 3, generator=generator, dtype=torch.float64) * 0.1
    bias = torch.randn(cout, generator=generator, dtype=torch.float64)
    single = volume.float().contiguous(memory_format=torch.channels_last_3d)
    transformed = winograd.transformed_weights(weight)
    with torch.inference_mode():
        for relu in (False, True):
            reference = F.conv3d(volume, weight, bias, padding=1)
            reference = reference.clamp(min=0) if relu else reference
            out = winograd.conv3d(single, transformed, bias.float(), relu)
            assert out.is_contiguous(memory_format=torch.channels_last_3d)
            # oneDNN's float32 convolution is off by 1e-6 to 4e-5 on these; 2e-5 of the scale
            torch.testing.assert_close(out.double(), reference, rtol=0, atol=2e-5 * reference.abs().max().item())


@needs_kernel
def test_the_module_uses_the_kernel_where_it_applies_and_the_convolution_elsewhere():
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(32, 32, 3, padding=1)
    module = winograd.WinogradConv3d(conv, relu=True)
    volume = torch.randn(1, 32, 4, 6, 8).contiguous(memory_format=torch.channels_last_3d)
    reference = F.relu(conv(volume))
    with torch.inference_mode():
        assert winograd.applies(volume)
        fast = module(volume)
    assert winograd.applies(volume) is False  # autograd on: the module falls back to F.conv3d
    slow = module(volume)
    torch.testing.assert_close(fast, reference.detach(), rtol=0, atol=1e-5)
    assert torch.equal(slow, reference)
    with torch.inference_mode():
        assert not winograd.applies(volume.contiguous())  # channels-first: F.conv3d
        torch.testing.assert_close(module(volume.contiguous()), reference.detach(), rtol=0, atol=1e-6)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # the opt-in mixed precision: autocast's conv
            assert not winograd.applies(volume)
            assert module(volume).dtype == torch.bfloat16


def test_which_convolutions_are_eligible():
    assert winograd.eligible(torch.nn.Conv3d(32, 32, 3, padding=1))
    assert winograd.eligible(torch.nn.Conv3d(64, 16, 3, padding=1))
    assert not winograd.eligible(torch.nn.Conv3d(32, 64, 3, padding=1, stride=2))  # PSMNet's down-sampling
    assert not winograd.eligible(torch.nn.Conv3d(32, 1, 3, padding=1))  # the classifiers' last layer
    assert not winograd.eligible(torch.nn.Conv3d(3, 32, 3, padding=1))
    assert not winograd.eligible(torch.nn.Conv2d(32, 32, 3, padding=1))


@needs_kernel
def test_the_inference_form_uses_it_for_the_stride_1_convolutions():
    from depthapp.backends.psmnet.model import PSMNet, to_inference_form

    model = to_inference_form(PSMNet(32).eval())
    replaced = [m for m in model.modules() if isinstance(m, winograd.WinogradConv3d)]
    # dres0's two (the first gives PSMNet.volume its weights), dres1's two, three hourglasses'
    # conv2 and conv4, the three classifiers' first
    assert len(replaced) == 2 + 2 + 3 * 2 + 3
    assert sum(m.relu for m in replaced) == 2 + 1 + 3 + 3  # the ReLUs after them are fused
    assert not any(isinstance(m, torch.nn.Conv3d) and winograd.eligible(m) for m in model.modules())
