#!/usr/bin/python3
"""The PyTorch side of the CRF benchmark (bench/crf.mjs drives it).

Usage: /usr/bin/python3 bench/crf_torch.py 'JSON-OPTIONS'
Prints one JSON line. The reference is pytorch-crf's algorithm (torchcrf.CRF,
written out here, not imported): the log partition by a loop over timesteps
with logsumexp over [B, K, K], the gold score by a loop over timesteps,
autograd for the backward; Viterbi by a loop of max over [B, K, K] and a
backtrace per sequence in Python. Runs on Debian's python3-torch 1.13.1, the
libtorch finetorch links.
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn


class ReferenceCRF(nn.Module):
    """pytorch-crf's CRF, time-first."""

    def __init__(self, num_tags):
        super().__init__()
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    def forward(self, emissions, tags, mask):
        return (self.gold_score(emissions, tags, mask) - self.log_partition(emissions, mask)).sum()

    def gold_score(self, emissions, tags, mask):
        T, B = tags.shape
        mask = mask.to(emissions.dtype)
        batch = torch.arange(B)
        score = self.start_transitions[tags[0]] + emissions[0, batch, tags[0]]
        for t in range(1, T):
            score = score + self.transitions[tags[t - 1], tags[t]] * mask[t]
            score = score + emissions[t, batch, tags[t]] * mask[t]
        last = mask.long().sum(0) - 1
        return score + self.end_transitions[tags[last, batch]]

    def log_partition(self, emissions, mask):
        T = emissions.shape[0]
        score = self.start_transitions + emissions[0]
        for t in range(1, T):
            nxt = torch.logsumexp(score.unsqueeze(2) + self.transitions + emissions[t].unsqueeze(1), dim=1)
            score = torch.where(mask[t].unsqueeze(1), nxt, score)
        return torch.logsumexp(score + self.end_transitions, dim=1)

    @torch.no_grad()
    def decode(self, emissions, mask):
        T, B, _ = emissions.shape
        score = self.start_transitions + emissions[0]
        history = []
        for t in range(1, T):
            nxt, indices = (score.unsqueeze(2) + self.transitions + emissions[t].unsqueeze(1)).max(dim=1)
            score = torch.where(mask[t].unsqueeze(1), nxt, score)
            history.append(indices)
        score = score + self.end_transitions
        ends = mask.long().sum(0) - 1
        paths = []
        for b in range(B):
            best = [score[b].argmax().item()]
            for hist in reversed(history[: ends[b]]):
                best.append(hist[b][best[-1]].item())
            best.reverse()
            paths.append(best)
        return paths


def checksum(paths):
    """A position-weighted sum of every tag of every path (the same in crf.mjs)."""
    total = 0
    for b, path in enumerate(paths):
        for t, tag in enumerate(path):
            total = (total + (b + 1) * (t + 1) * (tag + 1)) % 1000000007
    return total


def main():
    o = json.loads(sys.argv[1])
    torch.set_num_threads(o['threads'])
    T, B, K = o['length'], o['batch'], o['tags']
    lengths = torch.tensor(o['lengths'])
    torch.manual_seed(o['seed'])
    emissions = torch.randn(T, B, K).requires_grad_()
    tags = torch.randint(0, K, (T, B))
    mask = torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)
    crf = ReferenceCRF(K)

    def train_step():
        emissions.grad = None
        crf.zero_grad(set_to_none=True)
        llh = crf(emissions, tags, mask)
        (-llh).backward()
        return llh.item()

    def timed(fn, reps):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return times

    llh = train_step()
    timed(train_step, o['warmup'])
    train_ms = timed(train_step, o['reps'])
    paths = crf.decode(emissions, mask)
    timed(lambda: crf.decode(emissions, mask), o['warmup'])
    decode_ms = timed(lambda: crf.decode(emissions, mask), o['reps'])
    print(json.dumps({
        'side': 'pytorch',
        'threads': torch.get_num_threads(),
        'trainMs': statistics.median(train_ms),
        'decodeMs': statistics.median(decode_ms),
        'llh': llh,
        'pathLengths': [len(p) for p in paths],
        'pathChecksum': checksum(paths),
    }))


main()
