"""Training machinery (lrkit.train): EMA, checkpoints + RNG, and the loop's exact resume and failure handling."""

from __future__ import annotations

import json
import random
import signal

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from lrkit.fsutil import read_jsonl
from lrkit.train.checkpoint import capture_rng, load_checkpoint, restore, restore_rng, save_checkpoint
from lrkit.train.ema import ema_update, make_ema
from lrkit.train.loop import LoopConfig, NonFiniteLossError, TrainResult, train

# ---------------------------------------------------------------------------------------------------- EMA


def _fill(module: nn.Module, start: float) -> None:
    # Parameters set to small integers / quarters: the EMA arithmetic below is then exact in float32.
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=p.dtype).reshape(p.shape) + start + i)


def test_ema_update_equals_hand_computation_and_copies_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = make_ema(model)
    _fill(ema, 0.0)
    _fill(model, 4.0)
    model(torch.randn(5, 2))  # train mode: BatchNorm running stats and num_batches_tracked change
    before = {n: p.clone() for n, p in ema.named_parameters()}
    ema_update(ema, model, beta=0.75)
    for n, p in ema.named_parameters():
        m = dict(model.named_parameters())[n]
        expected = 0.75 * before[n] + 0.25 * m.detach()
        assert torch.equal(p, expected), n
    # First weight element: 0.75 * 0 + 0.25 * 4 = 1.
    assert ema[0].weight[0, 0].item() == 1.0
    for n, b in ema.named_buffers():
        assert torch.equal(b, dict(model.named_buffers())[n]), n
    assert ema[1].num_batches_tracked.item() == 1
    # beta = 1 freezes, beta = 0 copies.
    frozen = {n: p.clone() for n, p in ema.named_parameters()}
    ema_update(ema, model, beta=1.0)
    assert all(torch.equal(p, frozen[n]) for n, p in ema.named_parameters())
    ema_update(ema, model, beta=0.0)
    assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in ema.named_parameters())


def test_ema_update_with_spectral_norm_lerps_original_and_copies_u_v():
    torch.manual_seed(0)
    model = nn.Sequential(spectral_norm(nn.Conv2d(2, 3, 3)), nn.LeakyReLU(0.2))
    ema = make_ema(model)
    names = [n for n, _ in ema.named_parameters()]
    assert "0.parametrizations.weight.original" in names
    u_before = ema[0].parametrizations.weight[0]._u.clone()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(1, 2, 5, 5))  # a train-mode forward runs one power iteration: u, v change
    assert not torch.equal(model[0].parametrizations.weight[0]._u, u_before)
    old = ema[0].parametrizations.weight.original.clone()
    ema_update(ema, model, beta=0.5)
    new_orig = model[0].parametrizations.weight.original.detach()
    assert torch.allclose(ema[0].parametrizations.weight.original, 0.5 * old + 0.5 * new_orig, atol=1e-7, rtol=0)
    for buf in ("_u", "_v"):
        assert torch.equal(getattr(ema[0].parametrizations.weight[0], buf),
                           getattr(model[0].parametrizations.weight[0], buf))


def test_make_ema_is_independent_frozen_and_in_eval_mode():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    model(torch.randn(2, 3)).sum().backward()
    ema = make_ema(model)
    assert not ema.training and model.training
    assert all(not p.requires_grad and p.grad is None for p in ema.parameters())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(ema[0].weight, model[0].weight)  # no shared storage


def test_ema_update_errors():
    a, b = nn.Linear(2, 3), nn.Linear(2, 4)
    with pytest.raises(ValueError, match="shape mismatch.*weight"):
        ema_update(a, b, 0.9)
    with pytest.raises(ValueError, match=r"only in the model: \['1.bias', '1.weight'\]"):
        ema_update(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), 0.9)
    with pytest.raises(ValueError, match="beta must be a number in"):
        ema_update(make_ema(a), a, 1.5)
    with pytest.raises(ValueError, match="make_ema"):
        ema_update(a, a, 0.9)


# ------------------------------------------------------------------------------------------- checkpoints


def _net_and_opt(seed: int = 0):
    torch.manual_seed(seed)
    net = nn.Sequential(spectral_norm(nn.Linear(3, 4)), nn.ReLU(), nn.Linear(4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, betas=(0.0, 0.99))
    net(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    return net, opt


def test_checkpoint_round_trip_weights_only(tmp_path):
    net, opt = _net_and_opt(0)
    cfg = {"hr": 16, "domains": ("a", "b"), "nested": {"lr": 1e-3}}
    path = save_checkpoint(tmp_path / "c.pt", task="toy", config=cfg, step=7, modules={"net": net},
                           optimizers={"opt": opt}, extra={"note": [1, 2]})
    raw = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert raw["format"] == "lrkit-checkpoint" and raw["format_version"] == 1 and raw["step"] == 7
    assert raw["config"] == {"hr": 16, "domains": ["a", "b"], "nested": {"lr": 1e-3}}  # JSON-normalised
    json.dumps(raw["meta"])  # JSON-able
    assert {"time", "git_commit", "torch", "device"} <= set(raw["meta"]) and raw["meta"]["torch"] == torch.__version__
    assert raw["extra"] == {"note": [1, 2]}

    ckpt = load_checkpoint(path, task="toy", config=cfg)  # a tuple config still matches its saved list form
    net2, opt2 = _net_and_opt(1)
    assert restore(ckpt, {"net": net2}, {"opt": opt2}, rng=False) == 7
    for (n, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items()):
        assert torch.equal(a, b), n
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert all(torch.equal(s1[i]["exp_avg_sq"], s2[i]["exp_avg_sq"]) for i in s1)


def test_rng_restore_reproduces_python_numpy_torch(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves python's cached second gaussian in the state
    np.random.standard_normal()  # and numpy's
    net, opt = _net_and_opt(0)
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "c.pt", task="toy", config={}, step=0, modules={}, optimizers={})
    first = (random.gauss(0, 1), random.random(), np.random.standard_normal(), np.random.rand(3).tolist(),
             torch.rand(4).tolist())
    restore_rng(load_checkpoint(tmp_path / "c.pt")["rng"])
    again = (random.gauss(0, 1), random.random(), np.random.standard_normal(), np.random.rand(3).tolist(),
             torch.rand(4).tolist())
    assert first == again
    state = capture_rng()
    x = torch.rand(2)
    restore_rng(state)
    assert torch.equal(torch.rand(2), x)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    net, opt = _net_and_opt(0)
    torch.save(net.state_dict(), tmp_path / "raw.pt")
    with pytest.raises(ValueError, match="not an lrkit checkpoint.*raw state_dict"):
        load_checkpoint(tmp_path / "raw.pt")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pt")  # a pickled module: refused by weights_only
    with pytest.raises(ValueError, match="not an lrkit checkpoint.*weights_only"):
        load_checkpoint(tmp_path / "module.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="not an lrkit checkpoint"):
        load_checkpoint(tmp_path / "text.pt")

    cfg = {"preset": "celebahq128", "hr_size": 128, "lr_size": 8}
    save_checkpoint(tmp_path / "c.pt", task="i2ilr", config=cfg, step=1, modules={"net": net}, optimizers={})
    with pytest.raises(ValueError, match="task 'i2ilr', not 'stargan2'"):
        load_checkpoint(tmp_path / "c.pt", task="stargan2")
    with pytest.raises(ValueError, match="different config") as err:
        load_checkpoint(tmp_path / "c.pt", task="i2ilr", config={**cfg, "lr_size": 16, "extra_key": True})
    msg = str(err.value)
    assert "lr_size: checkpoint=8, requested=16" in msg
    assert "extra_key: checkpoint=<missing>, requested=true" in msg
    assert "hr_size" not in msg and "matching preset / sizes" in msg


def test_restore_lists_all_mismatches_and_loads_nothing(tmp_path):
    net, opt = _net_and_opt(0)
    save_checkpoint(tmp_path / "c.pt", task="toy", config={}, step=3, modules={"net": net}, optimizers={"opt": opt})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    other = nn.Sequential(spectral_norm(nn.Linear(3, 5)), nn.ReLU(), nn.Linear(5, 1), nn.Linear(1, 1))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError) as err:
        restore(ckpt, {"net": other}, {})
    msg = str(err.value)
    assert "'0.parametrizations.weight.original' has shape (4, 3) in the checkpoint, (5, 3) in the module" in msg
    assert "missing key '3.weight'" in msg and "optimizer 'opt' is in the checkpoint but was not passed" in msg
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())  # untouched


# ------------------------------------------------------------------------------------------------- loop


class ToyTask:
    """Tiny MLP regression with dropout (global torch RNG), python/numpy noise, Adam; batches derived from step."""

    name = "toy"

    def __init__(self, crash_at: int | None = None, nan_at: int | None = None, interrupt_at: int | None = None,
                 sigint_at: int | None = None, width: int = 8) -> None:
        torch.manual_seed(0)
        random.seed(0)
        np.random.seed(0)
        self.width = width
        self.net = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Dropout(0.3), nn.Linear(width, 1))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        self.w_true = torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
        self.crash_at, self.nan_at, self.interrupt_at, self.sigint_at = crash_at, nan_at, interrupt_at, sigint_at

    def config_dict(self) -> dict:
        return {"width": self.width, "lr": 1e-2}

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"opt": self.opt}

    def train_step(self, step: int) -> dict:
        if step == self.crash_at:
            raise RuntimeError("simulated crash")
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        if step == self.sigint_at:
            signal.raise_signal(signal.SIGINT)  # as if Ctrl-C arrived during the step
        g = torch.Generator().manual_seed(1000 + step)
        x = torch.randn(16, 4, generator=g)
        y = x @ self.w_true + 0.1 * torch.randn(16, 1, generator=g)
        scale = 1.0 + 0.01 * random.random() + 0.01 * float(np.random.rand())  # python + numpy RNG matter
        loss = (self.net(x) * scale - y).pow(2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        out = {"mse": loss.item(), "scale": scale}
        if step == self.nan_at:
            out["mse"] = float("nan")
        return out

    def sample_grid(self, step: int) -> torch.Tensor:
        noise = torch.rand(3, 4, 6)  # draws from the global RNG: the loop must isolate it
        return torch.tanh(noise + self.net[0].weight.sum().detach())


LOOP = LoopConfig(steps=20, checkpoint_every=4, sample_every=7)


def _params(task: ToyTask) -> dict:
    return {k: v.clone() for k, v in task.net.state_dict().items()}


def _losses(run) -> list[tuple]:
    return [(r["step"], r["mse"], r["scale"]) for r in read_jsonl(run / "losses.jsonl")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref")
    task = ToyTask()
    result = train(task, run, LOOP, progress=False)
    return run, _params(task), _losses(run), result


def test_uninterrupted_run_layout(reference):
    run, _, losses, result = reference
    assert isinstance(result, TrainResult) and result.final_step == 20
    assert result.checkpoint == run / "checkpoints" / "latest.pt" and load_checkpoint(result.checkpoint)["step"] == 20
    assert [s for s, _, _ in losses] == list(range(1, 21))
    assert losses[-1][1] < losses[0][1]  # it learns
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_00000007.png", "step_00000014.png", "step_00000020.png"]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["latest.pt"]  # keep_checkpoints=0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["task"] == "toy" and cfg["task_config"] == {"width": 8, "lr": 1e-2} and cfg["loop"]["steps"] == 20
    assert "commit" in cfg["git"] and "packages" in cfg["environment"]


def test_resume_is_bit_identical(reference, tmp_path):
    _, ref_params, ref_losses, _ = reference
    first = train(ToyTask(), tmp_path, LoopConfig(steps=10, checkpoint_every=4, sample_every=7), progress=False)
    assert first.final_step == 10 and (tmp_path / "samples" / "step_00000010.png").exists()  # end sample
    task = ToyTask()  # a new instance, freshly initialised and seeded like a new process
    result = train(task, tmp_path, LOOP, resume=True, progress=False)
    assert result.final_step == 20
    assert all(torch.equal(v, ref_params[k]) for k, v in _params(task).items())
    assert _losses(tmp_path) == ref_losses
    assert len(json.loads((tmp_path / "config.json").read_text())["resumes"]) == 1
    # steps <= checkpoint step: nothing to do.
    again = train(ToyTask(), tmp_path, LOOP, resume=True, progress=False)
    assert again.final_step == 20 and again.steps_per_second == 0.0 and _losses(tmp_path) == ref_losses


def test_crash_keeps_last_checkpoint_and_resume_drops_later_records(reference, tmp_path):
    _, ref_params, ref_losses, _ = reference
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(ToyTask(crash_at=15), tmp_path, LOOP, progress=False)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 12
    assert [r["step"] for r in read_jsonl(tmp_path / "losses.jsonl")] == list(range(1, 16))
    task = ToyTask()
    train(task, tmp_path, LOOP, resume=True, progress=False)
    assert all(torch.equal(v, ref_params[k]) for k, v in _params(task).items())
    assert _losses(tmp_path) == ref_losses  # records 13..15 of the crashed session were replaced, not duplicated


def test_keyboard_interrupt_writes_checkpoint_then_resumes_identically(reference, tmp_path):
    _, ref_params, ref_losses, _ = reference
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under a shell's background job
    with pytest.raises(KeyboardInterrupt):  # raised inside step index 9, before it changes anything
        train(ToyTask(interrupt_at=9), tmp_path, LOOP, progress=False)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 9
    with pytest.raises(KeyboardInterrupt):  # a real SIGINT during step index 12: the step finishes first
        train(ToyTask(sigint_at=12), tmp_path, LOOP, resume=True, progress=False)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 13
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored
    task = ToyTask()
    train(task, tmp_path, LOOP, resume=True, progress=False)
    assert all(torch.equal(v, ref_params[k]) for k, v in _params(task).items())
    assert _losses(tmp_path) == ref_losses


def test_refuses_to_overwrite_or_resume_nothing(reference, tmp_path):
    with pytest.raises(FileNotFoundError, match="drop --resume"):
        train(ToyTask(), tmp_path / "empty", LOOP, resume=True, progress=False)
    run = tmp_path / "run"
    train(ToyTask(), run, LoopConfig(steps=4, checkpoint_every=2, sample_every=0), progress=False)
    snapshot = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="--resume.*Nothing was overwritten"):
        train(ToyTask(), run, LOOP, progress=False)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == snapshot
    with pytest.raises(ValueError, match="width: checkpoint=8, requested=16"):
        train(ToyTask(width=16), run, LOOP, resume=True, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"loss 'mse' is nan at step 7;.*still holds step 4"):
        train(ToyTask(nan_at=6), tmp_path, LOOP, progress=False)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 4
    assert [r["step"] for r in read_jsonl(tmp_path / "losses.jsonl")] == list(range(1, 7))  # no NaN record
    assert not (tmp_path / "samples").exists()  # step 7's sample was never drawn


def test_snapshots_keep_the_newest(tmp_path):
    train(ToyTask(), tmp_path, LoopConfig(steps=10, checkpoint_every=3, sample_every=0, log_every=4,
                                          keep_checkpoints=2), progress=False)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest.pt", "step_00000009.pt", "step_00000010.pt"]
    assert load_checkpoint(tmp_path / "checkpoints" / "step_00000009.pt")["step"] == 9
    assert [r["step"] for r in read_jsonl(tmp_path / "losses.jsonl")] == [4, 8, 10]  # cadence + the end


def test_loop_config_validation():
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1"):
        LoopConfig(steps=10, checkpoint_every=0, sample_every=0)
    with pytest.raises(ValueError, match="sample_every"):
        LoopConfig(steps=10, checkpoint_every=1, sample_every=-1)


def test_frozen_blocks_parameter_gradients_and_restores_exactly_what_was_trainable():
    from lrkit.train.frozen import frozen

    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 1))
    net[0].bias.requires_grad_(False)  # frozen before: must stay frozen after
    x = torch.randn(2, 3, requires_grad=True)
    with frozen(net):
        net(x).sum().backward()
        assert not any(p.requires_grad for p in net.parameters())
    assert all(p.grad is None for p in net.parameters()) and x.grad is not None  # flows through, not into
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True]
    with pytest.raises(RuntimeError):
        with frozen(net):
            raise RuntimeError("inside")
    assert [p.requires_grad for p in net.parameters()] == [True, False, True, True]
