#!/usr/bin/python3
"""Reference values for finetorch's losses: torchvision.ops.sigmoid_focal_loss (Debian's
python3-torchvision 0.14) and the softmax focal loss of Lin et al. written directly in PyTorch.

Run with /usr/bin/python3 scripts/make-loss-fixtures.py; writes test/fixtures/losses.json.
"""
import json
import os

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'losses.json')
torch.manual_seed(0)


def enc(t):
    return {'shape': list(t.shape), 'data': t.detach().double().reshape(-1).tolist()}


def focal(logits, target, gamma, alpha, reduction, ignore):
    keep = torch.ones_like(target, dtype=torch.bool) if ignore is None else target != ignore
    t = torch.where(keep, target, torch.zeros_like(target))
    logpt = F.log_softmax(logits, 1).gather(1, t[:, None])[:, 0]
    loss = -((1 - logpt.exp()) ** gamma) * logpt
    if isinstance(alpha, float):
        loss = loss * alpha
    elif isinstance(alpha, list):
        loss = loss * torch.tensor(alpha)[t]
    loss = loss * keep
    if reduction == 'none':
        return loss
    if reduction == 'sum':
        return loss.sum()
    return loss.sum() / keep.sum()


cases = []
logits = torch.randn(12, 4) * 2
target = torch.randint(0, 4, (12,))
target[3] = -100
for gamma in (0.0, 0.5, 2.0, 5.0):
    for alpha in (None, 0.25, [0.1, 0.2, 0.3, 0.4]):
        for reduction in ('mean', 'sum', 'none'):
            for ignore in (None, -100):
                if ignore is None:
                    tg = target.clone()
                    tg[3] = 1
                else:
                    tg = target
                x = logits.clone().requires_grad_(True)
                loss = focal(x, tg, gamma, alpha, reduction, ignore)
                loss.sum().backward()
                cases.append({'gamma': gamma, 'alpha': alpha, 'reduction': reduction, 'ignoreIndex': ignore, 'target': tg.tolist(),
                              'loss': enc(loss), 'grad': enc(x.grad)})

sig = []
inputs = torch.randn(10, 3) * 2
targets = (torch.rand(10, 3) > 0.7).float()
for alpha in (0.25, -1.0, 0.5):
    for gamma in (0.0, 2.0):
        for reduction in ('none', 'mean', 'sum'):
            x = inputs.clone().requires_grad_(True)
            loss = sigmoid_focal_loss(x, targets, alpha=alpha, gamma=gamma, reduction=reduction)
            loss.sum().backward()
            sig.append({'alpha': alpha, 'gamma': gamma, 'reduction': reduction, 'loss': enc(loss), 'grad': enc(x.grad)})

with open(OUT, 'w') as f:
    json.dump({'logits': enc(logits), 'focal': cases, 'inputs': enc(inputs), 'targets': enc(targets), 'sigmoid': sig}, f, separators=(',', ':'))
print('wrote', OUT)
