"""The optimiser without torch.optim gives the weights torch.optim.AdamW(fused=True) gives."""

from __future__ import annotations

import torch
from torch import nn

from candlewise.models.fused_adamw import FusedAdamW


def _train(use_torch_optim: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(22, 32), nn.ReLU(), nn.Linear(32, 1))
    if use_torch_optim:
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4, fused=True)
    else:
        opt = FusedAdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)  # type: ignore[assignment]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(512, 22, generator=gen)
    y = (x[:, 0] > 0).float().unsqueeze(1)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(net(x), y).backward()
        opt.step()
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_weights_are_bitwise_equal_to_torch_optim_adamw_fused() -> None:
    ours, theirs = _train(False), _train(True)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    first = _train(False)
    assert not torch.equal(first["0.weight"], nn.Linear(22, 32).weight)  # it did train
