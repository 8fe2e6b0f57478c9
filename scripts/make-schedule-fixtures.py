#!/usr/bin/python3
"""Learning-rate schedules from PyTorch (Debian's python3-torch): OneCycleLR itself, and
LambdaLR with the lambdas of Hugging Face's get_linear_schedule_with_warmup,
get_cosine_schedule_with_warmup and get_constant_schedule_with_warmup (transformers is not
installed here; the formulas are transcribed from its optimization.py).

Run with /usr/bin/python3 scripts/make-schedule-fixtures.py; writes test/fixtures/schedules.json.
"""
import json
import math
import os

import torch

TOTAL, WARMUP = 20, 5
BASE = [1e-5, 1e-3]


def linear(step):
    if step < WARMUP:
        return float(step) / float(max(1, WARMUP))
    return max(0.0, float(TOTAL - step) / float(max(1, TOTAL - WARMUP)))


def cosine(step):
    if step < WARMUP:
        return float(step) / float(max(1, WARMUP))
    progress = float(step - WARMUP) / float(max(1, TOTAL - WARMUP))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def constant(step):
    return float(step) / float(max(1.0, WARMUP)) if step < WARMUP else 1.0


def run(make):
    params = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{'params': [params[0]], 'lr': BASE[0]}, {'params': [params[1]], 'lr': BASE[1]}], lr=BASE[0])
    sched = make(opt)
    lrs = []
    for _ in range(TOTAL):
        lrs.append([g['lr'] for g in opt.param_groups])
        opt.step()
        sched.step()
    return lrs


out = {'total': TOTAL, 'warmup': WARMUP, 'base': BASE}
for name, fn in (('linear', linear), ('cosine', cosine), ('constant', constant)):
    out[name] = run(lambda opt, fn=fn: torch.optim.lr_scheduler.LambdaLR(opt, fn))
out['onecycle'] = run(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=BASE, total_steps=TOTAL, pct_start=0.3,
                                                                      anneal_strategy='cos', cycle_momentum=False, div_factor=25.0,
                                                                      final_div_factor=1e4))
with open(os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'schedules.json'), 'w') as f:
    json.dump(out, f)
print('ok')
