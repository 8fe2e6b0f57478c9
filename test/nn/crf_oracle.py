# Brute-force oracle for test/nn/crf.test.ts: a linear-chain CRF's
# log-likelihood, its gradients and the Viterbi paths, by enumerating every
# tag path (K**T of them) with PyTorch in float64. Independent of the
# forward algorithm and of pytorch-crf's code: only the definition
# score(y) = start[y0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_last].
# Reads JSON cases on stdin (time-first: emissions [T][B][K], tags and mask [T][B]),
# writes JSON results on stdout.
import itertools
import json
import sys

import torch

torch.set_default_dtype(torch.float64)


def run_case(case):
    E = torch.tensor(case['emissions'], requires_grad=True)
    start = torch.tensor(case['start'], requires_grad=True)
    end = torch.tensor(case['end'], requires_grad=True)
    trans = torch.tensor(case['transitions'], requires_grad=True)
    tags = case['tags']
    mask = case['mask']
    T, B, K = E.shape
    lengths = [sum(1 for t in range(T) if mask[t][b]) for b in range(B)]

    llh = []
    paths = []
    for b in range(B):
        L = lengths[b]
        # every path at once: P [K**L, L]
        P = torch.tensor(list(itertools.product(range(K), repeat=L)), dtype=torch.long)
        steps = torch.arange(L)
        scores = start[P[:, 0]] + end[P[:, -1]] + E[steps, b][steps.unsqueeze(0), P].sum(1)
        if L > 1:
            scores = scores + trans[P[:, :-1], P[:, 1:]].sum(1)
        gold = torch.tensor([tags[t][b] for t in range(L)])
        gold_index = int(sum(int(y) * K ** (L - 1 - t) for t, y in enumerate(gold)))  # itertools.product's order
        assert P[gold_index].tolist() == gold.tolist()
        llh.append(scores[gold_index] - torch.logsumexp(scores, 0))
        paths.append(P[int(scores.argmax())].tolist())
    llh = torch.stack(llh)
    tokens = float(sum(lengths))
    reduced = {'none': llh, 'sum': llh.sum(), 'mean': llh.mean(), 'token_mean': llh.sum() / tokens}
    out = {'paths': paths, 'reductions': {}}
    for name, value in reduced.items():
        # the gradients of sum(value * weight): for 'none' a weight per sequence
        weight = torch.tensor(case['noneWeights']) if name == 'none' else torch.tensor(1.0)
        inputs = [E, start, end, trans]
        grads = torch.autograd.grad((value * weight).sum(), inputs, retain_graph=True, allow_unused=True)
        grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, inputs)]  # T = 1: no transitions
        out['reductions'][name] = {
            'value': value.tolist(),
            'emissions': grads[0].tolist(),
            'start_transitions': grads[1].tolist(),
            'end_transitions': grads[2].tolist(),
            'transitions': grads[3].tolist(),
        }
    return out


cases = json.load(sys.stdin)
json.dump([run_case(c) for c in cases], sys.stdout)
