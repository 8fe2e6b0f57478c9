#!/usr/bin/python3
"""Reference values from PyTorch (Debian's python3-torch 1.13) for finetorch's tests.

Run with Debian's interpreter: /usr/bin/python3 scripts/make-fixtures.py
Writes test/fixtures/*.json. The tests compare finetorch against these numbers;
nothing here is produced by finetorch.
"""
import json
import os
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures')
os.makedirs(OUT, exist_ok=True)


def dump(name, obj):
    with open(os.path.join(OUT, name), 'w') as f:
        json.dump(obj, f, separators=(',', ':'))
    print('wrote', name)


def enc(t):
    return {'dtype': str(t.dtype).replace('torch.', ''), 'shape': list(t.shape), 'data': t.detach().reshape(-1).tolist()}


# ---- ops: value and gradient of each op on fixed random inputs -------------
torch.manual_seed(0)
A = torch.randn(3, 4)
B = torch.randn(4)
C = torch.randn(4, 2)
LOGITS = torch.randn(5, 3)
TARGET = torch.tensor([0, 2, 1, 2, 0])
PROBS = torch.softmax(torch.randn(5, 3), 1)
W3 = torch.tensor([0.2, 1.0, 2.5])
BX = torch.randn(6)
BY = torch.tensor([1., 0., 1., 1., 0., 0.])
IDX = torch.tensor([[0, 3], [1, 1], [2, 0]])
ROWS = torch.tensor([2, 0])

# (name, inputs, differentiable input indices, fn)
CASES = [
    ('add', [A, B], [0, 1], lambda a, b: a + b),
    ('add_alpha', [A, B], [0, 1], lambda a, b: a.add(b, alpha=2.5)),
    ('sub', [A, B], [0, 1], lambda a, b: a - b),
    ('mul', [A, B], [0, 1], lambda a, b: a * b),
    ('div', [A, B], [0, 1], lambda a, b: a / (b.abs() + 0.5)),
    ('mul_scalar', [A], [0], lambda a: a * 2.5),
    ('pow_scalar', [A], [0], lambda a: (a.abs() + 0.1) ** 1.7),
    ('pow_tensor', [A, B], [0, 1], lambda a, b: (a.abs() + 0.1) ** b),
    ('exp', [A], [0], lambda a: a.exp()),
    ('log', [A], [0], lambda a: (a.abs() + 0.1).log()),
    ('sqrt', [A], [0], lambda a: (a.abs() + 0.1).sqrt()),
    ('abs', [A], [0], lambda a: a.abs()),
    ('neg', [A], [0], lambda a: -a),
    ('clamp', [A], [0], lambda a: a.clamp(-0.5, 0.5)),
    ('clamp_min', [A], [0], lambda a: a.clamp(min=0.1)),
    ('where', [A, B], [0, 1], lambda a, b: torch.where(a > 0, a, b * 2)),
    ('maximum', [A, B], [0, 1], lambda a, b: torch.maximum(a, b)),
    ('sum_all', [A], [0], lambda a: a.sum()),
    ('sum_dim', [A], [0], lambda a: a.sum(1)),
    ('sum_dims_keepdim', [A], [0], lambda a: a.sum([0, 1], keepdim=True)),
    ('mean_all', [A], [0], lambda a: a.mean()),
    ('mean_keepdim', [A], [0], lambda a: a.mean(0, keepdim=True)),
    ('max_all', [A], [0], lambda a: a.max()),
    ('max_dim', [A], [0], lambda a: a.max(1).values),
    ('min_dim_keepdim', [A], [0], lambda a: a.min(0, keepdim=True).values),
    ('logsumexp', [A], [0], lambda a: a.logsumexp(1)),
    ('std', [A], [0], lambda a: a.std(1)),
    ('var_biased', [A], [0], lambda a: a.var(0, unbiased=False)),
    ('norm', [A], [0], lambda a: a.norm()),
    ('softmax', [A], [0], lambda a: a.softmax(1)),
    ('logSoftmax', [A], [0], lambda a: a.log_softmax(0)),
    ('sigmoid', [A], [0], lambda a: a.sigmoid()),
    ('tanh', [A], [0], lambda a: a.tanh()),
    ('relu', [A], [0], lambda a: a.relu()),
    ('gelu', [A], [0], lambda a: F.gelu(a)),
    ('matmul', [A, C], [0, 1], lambda a, c: a @ c),
    ('transpose', [A], [0], lambda a: a.transpose(0, 1) * torch.arange(3.)),
    ('reshape', [A], [0], lambda a: a.reshape(2, 6)),
    ('permute_unsqueeze', [A], [0], lambda a: a.unsqueeze(0).permute(2, 0, 1)),
    ('gather', [A, IDX], [0], lambda a, i: a.gather(1, i)),
    ('indexSelect', [A, ROWS], [0], lambda a, r: a.index_select(0, r)),
    ('cat', [A], [0], lambda a: torch.cat([a, a * 2], 1)),
    ('stack', [A, B], [0, 1], lambda a, b: torch.stack([a[0], b], 0)),
    ('index_slice', [A], [0], lambda a: a[1:, ::2]),
    ('crossEntropy', [LOGITS, TARGET], [0], lambda x, t: F.cross_entropy(x, t)),
    ('crossEntropy_weight', [LOGITS, TARGET, W3], [0], lambda x, t, w: F.cross_entropy(x, t, weight=w)),
    ('crossEntropy_smoothing', [LOGITS, TARGET], [0], lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1)),
    ('crossEntropy_weight_smoothing', [LOGITS, TARGET, W3], [0], lambda x, t, w: F.cross_entropy(x, t, weight=w, label_smoothing=0.2)),
    ('crossEntropy_ignore', [LOGITS, TARGET], [0], lambda x, t: F.cross_entropy(x, t, ignore_index=2)),
    ('crossEntropy_sum', [LOGITS, TARGET], [0], lambda x, t: F.cross_entropy(x, t, reduction='sum')),
    ('crossEntropy_none', [LOGITS, TARGET], [0], lambda x, t: F.cross_entropy(x, t, reduction='none')),
    ('crossEntropy_probs', [LOGITS, PROBS], [0], lambda x, p: F.cross_entropy(x, p)),
    ('nllLoss_weight', [LOGITS, TARGET, W3], [0], lambda x, t, w: F.nll_loss(x.log_softmax(1), t, weight=w)),
    ('bceWithLogits', [BX, BY], [0], lambda x, y: F.binary_cross_entropy_with_logits(x, y)),
    ('bceWithLogits_posWeight', [BX, BY], [0], lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(3.0))),
    ('bceWithLogits_weight_sum', [BX, BY], [0], lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=torch.linspace(0.5, 1.5, 6), reduction='sum')),
    ('mseLoss', [BX, BY], [0], lambda x, y: F.mse_loss(x, y)),
    # not differentiable: values only
    ('argmax_dim', [A], [], lambda a: a.argmax(1)),
    ('argmax_all', [A], [], lambda a: a.argmax()),
    ('oneHot', [TARGET], [], lambda t: F.one_hot(t, 4)),
    ('gt', [A, B], [], lambda a, b: a > b),
    ('eq_scalar', [TARGET], [], lambda t: t == 2),
    ('topk_values', [A], [0], lambda a: a.topk(2, 1).values),
    ('sort_indices', [A], [], lambda a: a.sort(stable=True, dim=1, descending=True).indices),
    ('cumsum', [A], [0], lambda a: a.cumsum(1)),
]

ops = []
for name, inputs, diff, fn in CASES:
    xs = [x.clone().requires_grad_(i in diff) for i, x in enumerate(inputs)]
    out = fn(*xs)
    case = {'name': name, 'inputs': [enc(x) for x in inputs], 'output': enc(out)}
    if diff:
        # A random upstream gradient makes every input gradient non-trivial.
        gen = torch.Generator().manual_seed(len(ops))
        up = torch.randn(out.shape, generator=gen)
        (out * up).sum().backward()
        case['upstream'] = enc(up)
        case['grads'] = {str(i): enc(xs[i].grad) for i in diff}
    ops.append(case)
dump('ops.json', ops)

# ---- dtypes: what each dtype stores for the same values ---------------------
DTYPE_VALUES = {
    'float32': [0.0, 1.1, -2.5, 3.0, 65504.0, 1e-3], 'float64': [0.0, 1.1, -2.5, 3.0, 65504.0, 1e-3],
    'float16': [0.0, 1.1, -2.5, 3.0, 65504.0, 1e-3], 'bfloat16': [0.0, 1.1, -2.5, 3.0, 65504.0, 1e-3],
    'int64': [0.0, 1.1, -2.5, 3.0, 250.0, 1e-3], 'int32': [0.0, 1.1, -2.5, 3.0, 250.0, 1e-3],
    'uint8': [0.0, 1.1, 2.5, 3.0, 250.0, 1e-3], 'bool': [0.0, 1.1, -2.5, 3.0, 250.0, 1e-3],
}
# float64 values converted to each dtype, as finetorch receives JS numbers
dump('dtypes.json', {d: {'values': v, 'stored': enc(torch.tensor(v, dtype=torch.float64).to(getattr(torch, d)).to(torch.float64))}
                     for d, v in DTYPE_VALUES.items()})

# ---- optimizers: two param groups, fixed gradients, several steps -----------
torch.manual_seed(1)
P1 = torch.randn(3, 4)
P2 = torch.randn(4)
GRADS = [(torch.randn(3, 4), torch.randn(4)) for _ in range(6)]
CONFIGS = [
    ('SGD', dict(lr=0.1, momentum=0.9, weight_decay=0.01), dict(lr=0.01, weight_decay=0.0)),
    ('SGD', dict(lr=0.1, momentum=0.9, nesterov=True), dict(lr=0.05, weight_decay=0.1)),
    ('SGD', dict(lr=0.2, momentum=0.5, dampening=0.3), dict(lr=0.01)),
    ('Adam', dict(lr=1e-2, weight_decay=0.01), dict(lr=1e-3, weight_decay=0.0)),
    ('Adam', dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, amsgrad=True), dict(lr=5e-3)),
    ('AdamW', dict(lr=1e-2, weight_decay=0.05), dict(lr=1e-3, weight_decay=0.0)),
    ('AdamW', dict(lr=1e-2, amsgrad=True), dict(lr=2e-3, weight_decay=0.3)),
]
opt_cases = []
for kind, defaults, group2 in CONFIGS:
    p1 = P1.clone().requires_grad_(True)
    p2 = P2.clone().requires_grad_(True)
    opt = getattr(torch.optim, kind)([{'params': [p1]}, dict(params=[p2], **group2)], **defaults)
    steps = []
    for g1, g2 in GRADS:
        p1.grad = g1.clone()
        p2.grad = g2.clone()
        opt.step()
        steps.append([enc(p1), enc(p2)])
    camel = {'weight_decay': 'weightDecay'}
    opt_cases.append({
        'kind': kind,
        'defaults': {camel.get(k, k): (list(v) if isinstance(v, tuple) else v) for k, v in defaults.items()},
        'group2': {camel.get(k, k): v for k, v in group2.items()},
        'steps': steps,
    })
dump('optim.json', {'p1': enc(P1), 'p2': enc(P2), 'grads': [[enc(a), enc(b)] for a, b in GRADS], 'cases': opt_cases})

# ---- modules: names, order, shapes and forward of composite networks ---------
torch.manual_seed(2)
cnn = nn.Sequential(
    nn.Conv2d(3, 8, 3, stride=1, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 4, (3, 1), stride=(2, 1), padding=(1, 0), bias=False), nn.BatchNorm2d(4), nn.GELU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2), nn.Sigmoid())
x = torch.randn(2, 3, 8, 8)
# make BatchNorm running statistics non-trivial before saving
cnn.train()
with torch.no_grad():
    for _ in range(3):
        cnn(torch.randn(4, 3, 8, 8))
state = {k: enc(v) for k, v in cnn.state_dict().items()}
cnn.eval()
eval_out = cnn(x)
cnn.train()
torch.manual_seed(3)
# train mode without dropout randomness: compare the layers before Dropout
features = cnn[:9](x)
new_state = {k: enc(v) for k, v in cnn.state_dict().items()}  # BN stats after one train-mode forward
text = nn.Sequential()
text.add_module('embed', nn.Embedding(10, 6, padding_idx=0))
text.add_module('norm', nn.LayerNorm(6))
lstm = nn.LSTM(6, 5, num_layers=2, batch_first=True, bidirectional=True)
ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
emb = text(ids)
lstm_out, (h, c) = lstm(emb)
dump('modules.json', {
    'cnn': {
        'names': [n for n, _ in cnn.named_parameters()],
        'stateKeys': list(cnn.state_dict().keys()),
        'state': state, 'input': enc(x), 'evalOutput': enc(eval_out),
        'trainFeatures': enc(features), 'stateAfterTrainForward': new_state,
    },
    'text': {
        'state': {k: enc(v) for k, v in text.state_dict().items()},
        'lstmState': {k: enc(v) for k, v in lstm.state_dict().items()},
        'lstmNames': [n for n, _ in lstm.named_parameters()],
        'ids': enc(ids), 'embedded': enc(emb), 'output': enc(lstm_out), 'h': enc(h), 'c': enc(c),
    },
})
