"""Hygiene: line-based progress off a terminal, the NaN-loss guard, retired config keys."""
import io
import math

import pytest
import torch

from mrpn.config import ConfigError, config_from_dict, load_config
from mrpn.progress import progress


def test_progress_off_terminal_writes_whole_lines_not_carriage_returns():
    f = io.StringIO()
    bar = progress(total=500, file=f, desc="epoch 1", unit="batch", leave=False)
    for i in range(500):
        bar.update(1)
        bar.set_postfix(loss=f"{i:.3f}")  # refreshes on every call; a log must not get 500 lines
    bar.write("a message", file=f)
    bar.close()
    out = f.getvalue()
    assert "\r" not in out
    lines = out.splitlines()
    assert 2 <= len(lines) <= 4 and lines[-1].startswith("epoch 1: 500/500")
    assert "loss=499.000" in lines[-1] and "a message" in lines


def test_progress_disabled_writes_nothing():
    f = io.StringIO()
    assert sum(progress(range(3), file=f, disable=True)) == 3
    assert f.getvalue() == ""


def test_nan_loss_stops_before_the_optimizer_step():
    from mrpn.training.loop import train_one_epoch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 2)

        def forward(self, batch):
            return {"scores": self.w(batch["x"]) * float("nan")}

    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    batch = {"x": torch.ones(2, 2), "label": torch.tensor([0, 1])}
    with pytest.raises(FloatingPointError, match="loss became nan"):
        train_one_epoch(net, [batch], opt, torch.device("cpu"), precision="fp32", progress=False)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]) and not math.isnan(float(v.sum()))


def test_retired_key_loads_from_a_saved_config_but_not_from_an_override():
    d = load_config("cpu").to_dict()
    d["train"]["log_every"] = 10  # what configs saved before its removal carry
    assert config_from_dict(d).train.epochs == d["train"]["epochs"]
    with pytest.raises(ConfigError, match="was removed"):
        load_config("cpu", overrides=["train.log_every=5"])
