"""``recipe="public_code"``: the public I2I-LR training script's loop and network choices, selectable whole."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrkit.losses.gan import r1_penalty, r1_penalty_on_loss
from lrkit.methods.i2ilr.config import RECIPES, I2ILRConfig
from lrkit.methods.i2ilr.discriminator import I2ILRDiscriminator
from lrkit.methods.i2ilr.inference import load_i2ilr
from lrkit.methods.i2ilr.layers import SPAdaIN
from lrkit.methods.i2ilr.task import build_discriminator, build_generator, train_i2ilr

from i2ilr_tiny import TINY

pytestmark = pytest.mark.usefixtures("one_thread", "tmp_cache")  # see conftest.py
PUBLIC = TINY.with_overrides(recipe="public_code", steps=2, checkpoint_every=2, sample_every=0)


def test_recipe_sets_every_choice_and_config_fields_override_one():
    assert PUBLIC.choices == RECIPES["public_code"]
    ch = PUBLIC.choices
    assert (ch.lr_diff, ch.adv_on_cycle, ch.adv_reduce, ch.r1_form, ch.r1_gamma) == \
        ("public_code", True, "sum", "loss", 10.0)
    assert (ch.d_patch, ch.d_eval_in_g_step, ch.quantize_lr, ch.upsample, ch.spadain_sn, ch.pono_unbiased) == \
        (True, True, False, "bilinear", False, True)
    one = PUBLIC.with_overrides(lr_diff="paper")  # vary one choice, keep the rest of the recipe
    assert one.choices.lr_diff == "paper" and one.choices.adv_reduce == "sum"
    assert TINY.choices == RECIPES["paper"]
    assert I2ILRConfig.from_dict(PUBLIC.to_dict()) == PUBLIC
    with pytest.raises(ValueError, match="recipe must be one of"):
        TINY.with_overrides(recipe="official")
    with pytest.raises(ValueError, match="r1_gamma >= 0"):
        TINY.with_overrides(r1_gamma=-1.0)


def test_public_code_networks():
    G, D = build_generator(PUBLIC), build_discriminator(PUBLIC)
    assert G.config_dict()["upsample"] == "bilinear" and not G.config_dict()["spadain_sn"]
    norms = [m for m in G.modules() if isinstance(m, SPAdaIN)]
    assert norms and not any(hasattr(m.gamma_conv, "parametrizations") for m in norms)  # plain 1x1 convs
    assert all(hasattr(m.gamma_conv, "parametrizations") for m in build_generator(TINY).modules()
               if isinstance(m, SPAdaIN))
    x, lr = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    assert G(x, lr).shape == (2, 3, 32, 32)
    # The patch D: 5 x 5 logits at LR 8 and above (the public code's), 1 x 1 at LR 4; the paper D one logit.
    assert D(x, None).shape == (2, 5, 5)
    for hr, lr_size, side in ((64, 16, 5), (64, 32, 5), (32, 4, 1)):
        d = I2ILRDiscriminator(hr, lr_size, base_channels=8, max_channels=16, patch=True)
        assert d(torch.zeros(1, 3, hr, hr), None).shape == (1, side, side), (hr, lr_size)
    assert build_discriminator(TINY)(x, None).shape == (2,)


def test_r1_on_the_loss_equals_its_per_half_definition():
    torch.manual_seed(0)
    D = I2ILRDiscriminator(32, 8, base_channels=8, max_channels=16, patch=True).eval()  # fixed SN weights
    real = (torch.rand(4, 3, 32, 32) * 2 - 1).requires_grad_(True)
    got, logs = r1_penalty_on_loss(D(real, None), real, gamma=10.0, groups=2, repeats=2)
    want = 0.0
    for half in (real[:2].detach(), real[2:].detach()):  # each half's own loss, its own gradient, twice
        h = half.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.softplus(-D(h, None)).mean(), h)
        want += 2 * 0.5 * 10.0 * g.pow(2).flatten(1).sum(1).mean()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)
    # The loss form is much weaker than the logits form for the same gamma (gradient scaled by sigmoid / n).
    logits_form, _ = r1_penalty(D(real, None), real, 10.0)
    assert float(got.detach()) < float(logits_form.detach()) and logs["r1"] == pytest.approx(float(got.detach()))
    got.backward()  # the penalty trains D
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad)


def test_public_code_recipe_trains_resumes_and_loads(tmp_path):
    res = train_i2ilr(PUBLIC, tmp_path / "run", progress=False)
    assert res.final_step == 2
    model = load_i2ilr(res.checkpoint)  # rebuilt from the checkpoint's config: bilinear G without SPAdaIN SN
    assert model.config.recipe == "public_code" and model.G.config_dict()["upsample"] == "bilinear"
    x, lr = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 8, 8) * 2 - 1
    assert torch.isfinite(model.G(x, lr)).all()
    more = train_i2ilr(PUBLIC.with_overrides(steps=3), tmp_path / "run", resume=True, progress=False)
    assert more.final_step == 3
