#!/usr/bin/python3
"""The PyTorch side of finetorch's benchmark suite (bench/run.mjs drives it).

Usage: /usr/bin/python3 bench/torch_side.py TASK 'JSON-OPTIONS'
Prints one JSON line (the result) on stdout. Every task mirrors a task of
bench/ft_side.mjs: same model, sizes, optimizer, loss and step count. Runs on
Debian's python3-torch 1.13.1, the same libtorch build finetorch links.

Threads: options.threads = null leaves PyTorch at its default; a number calls
torch.set_num_threads(n) before anything else runs.
"""
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def proc_status_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    return None


def rss_mb():
    return proc_status_kb('VmRSS') / 1024


def peak_rss_mb():
    return proc_status_kb('VmHWM') / 1024


def set_threads(o):
    if o.get('threads'):
        torch.set_num_threads(int(o['threads']))
    return torch.get_num_threads()


def pct(values, p):
    """Percentile with linear interpolation (numpy's default)."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def vision_model(name, num_classes=10):
    import torchvision
    return getattr(torchvision.models, name)(num_classes=num_classes)


def two_groups(model, head='fc'):
    """AdamW with two param groups: backbone at 1e-4, head at 1e-3, weight decay 0.01."""
    head_params = list(getattr(model, head).parameters())
    ids = {id(p) for p in head_params}
    backbone = [p for p in model.parameters() if id(p) not in ids]
    return torch.optim.AdamW([{'params': backbone, 'lr': 1e-4}, {'params': head_params, 'lr': 1e-3}], weight_decay=0.01)


def train_step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


# ---- tasks ----

def training_setup(o):
    """Threads, a seeded model in train mode and AdamW with two groups: the start of every training task."""
    threads = set_threads(o)
    torch.manual_seed(0)
    model = vision_model(o['model'])
    model.train()
    return threads, model, two_groups(model)


def task_train(o):
    """Training throughput on a fixed synthetic batch (images/s)."""
    threads, model, opt = training_setup(o)
    b, s = o['batch'], o['size']
    x = torch.randn(b, 3, s, s)
    y = torch.randint(0, 10, (b,))
    for _ in range(o['warmup']):
        train_step(model, opt, x, y)
    times = []
    t0 = time.perf_counter()
    for _ in range(o['steps']):
        t = time.perf_counter()
        train_step(model, opt, x, y)
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    return {'threads': threads, 'imagesPerSecond': o['steps'] * b / elapsed, 'stepMsMedian': pct(times, 50) * 1000, 'seconds': elapsed}


def task_matmul(o):
    """float32 matmul (sgemm) GFLOP/s: the peak a conv net could hope for."""
    threads = set_threads(o)
    n = o['n']
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    for _ in range(2):
        torch.mm(a, b, out=c)
    best = 0.0
    for _ in range(o['iters']):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return {'threads': threads, 'n': n, 'gflops': best}


def task_flops(o):
    """Forward FLOPs per image (2 x multiply-adds of Conv2d and Linear), counted with forward hooks."""
    out = {}
    for name, size in o['models']:
        model = vision_model(name).eval()
        total = [0]

        def conv_hook(m, inp, outp):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            total[0] += 2 * outp.numel() * k

        def linear_hook(m, inp, outp):
            total[0] += 2 * outp.numel() * m.in_features

        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.register_forward_hook(conv_hook)
            elif isinstance(m, nn.Linear):
                m.register_forward_hook(linear_hook)
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size))
        out[f'{name}@{size}'] = total[0]
    return {'forwardFlopsPerImage': out}


def make_epoch_loader(o):
    import torchvision.datasets as datasets
    import torchvision.transforms as T
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    tf = T.Compose([T.RandomResizedCrop(o['crop'], scale=(0.8, 1.0)), T.RandomHorizontalFlip(0.5), T.ToTensor(), T.Normalize(mean, std)])
    ds = datasets.ImageFolder(o['root'], transform=tf)
    g = torch.Generator()
    g.manual_seed(1)
    workers = o.get('workers', 0)
    return ds, torch.utils.data.DataLoader(ds, batch_size=o['batch'], shuffle=True, num_workers=workers, generator=g,
                                           persistent_workers=False, pin_memory=False)


def task_epoch(o):
    """One training epoch over PNG files on disk with augmentation (decode, random resized crop, flip, normalize)."""
    threads = set_threads(o)
    torch.manual_seed(0)
    model = vision_model('resnet18')
    model.train()
    opt = two_groups(model)
    ds, loader = make_epoch_loader(o)
    wait = 0.0
    n = 0
    t0 = time.perf_counter()
    it = iter(loader)
    while True:
        t = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            break
        wait += time.perf_counter() - t
        train_step(model, opt, x, y)
        n += len(y)
    elapsed = time.perf_counter() - t0
    return {'threads': threads, 'workers': o.get('workers', 0), 'images': n, 'seconds': elapsed,
            'imagesPerSecond': n / elapsed, 'dataWaitShare': wait / elapsed}


def task_memory(o):
    """RSS over many training steps (the same loop as finetorch's memory task), sampled every few steps."""
    threads, model, opt = training_setup(o)
    b, s = o['batch'], o['size']
    xs = torch.randn(o['dataset'], 3, s, s)
    ys = torch.randint(0, 10, (o['dataset'],))
    samples = []
    step = 0
    t0 = time.perf_counter()
    while step < o['steps']:
        perm = torch.randperm(o['dataset'])
        for i in range(0, o['dataset'] - b + 1, b):
            idx = perm[i:i + b]
            train_step(model, opt, xs[idx], ys[idx]).item()
            step += 1
            if step % o['every'] == 0:
                samples.append({'step': step, 'rssMB': rss_mb()})
            if step >= o['steps']:
                break
    return {'threads': threads, 'seconds': time.perf_counter() - t0, 'samples': samples}


def task_peak(o):
    """Peak RSS (VmHWM) of a ResNet-50 fine-tune: load a .pth checkpoint, new 10-class head, AdamW, a few steps."""
    threads = set_threads(o)
    torch.manual_seed(0)
    model = vision_model('resnet50', 1000)
    model.load_state_dict(torch.load(o['checkpoint']))
    model.fc = nn.Linear(2048, 10)
    model.train()
    opt = two_groups(model)
    b, s = o['batch'], o['size']
    after_load = rss_mb()
    for _ in range(o['steps']):
        x = torch.randn(b, 3, s, s)
        y = torch.randint(0, 10, (b,))
        train_step(model, opt, x, y).item()
    return {'threads': threads, 'peakRssMB': peak_rss_mb(), 'rssAfterLoadMB': after_load, 'rssEndMB': rss_mb(),
            'maxRssGetrusageMB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# A BERT encoder with a sequence-classification head, in the layout of Hugging
# Face's BertForSequenceClassification (separate query/key/value projections,
# scores scaled by 1/sqrt(d), additive mask, GELU, post-LayerNorm, tanh
# pooler), as finetorch's native BERT computes it.
class BertLayer(nn.Module):
    def __init__(self, h, heads, inter, eps):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.attn_out, self.attn_norm = nn.Linear(h, h), nn.LayerNorm(h, eps=eps)
        self.inter, self.out, self.out_norm = nn.Linear(h, inter), nn.Linear(inter, h), nn.LayerNorm(h, eps=eps)

    def forward(self, x, mask_add):
        B, T, H = x.shape
        d = H // self.heads
        split = lambda t: t.view(B, -1, self.heads, d).transpose(1, 2)
        scores = split(self.query(x)) @ split(self.key(x)).transpose(-1, -2) / math.sqrt(d)
        ctx = ((scores + mask_add).softmax(-1) @ split(self.value(x))).transpose(1, 2).contiguous().view(B, T, H)
        a = self.attn_norm(self.attn_out(ctx) + x)
        return self.out_norm(self.out(F.gelu(self.inter(a))) + a)


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, eps = c['hidden_size'], c['layer_norm_eps']
        self.word = nn.Embedding(c['vocab_size'], h, padding_idx=0)
        self.pos = nn.Embedding(c['max_position_embeddings'], h)
        self.types = nn.Embedding(c['type_vocab_size'], h)
        self.norm = nn.LayerNorm(h, eps=eps)
        self.layers = nn.ModuleList([BertLayer(h, c['num_attention_heads'], c['intermediate_size'], eps) for _ in range(c['num_hidden_layers'])])
        self.pooler = nn.Linear(h, h)
        self.classifier = nn.Linear(h, c['num_labels'])

    def forward(self, ids, mask, types):
        pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
        x = self.norm(self.word(ids) + self.types(types) + self.pos(pos))
        mask_add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, mask_add)
        return self.classifier(torch.tanh(self.pooler(x[:, 0])))


def task_latency(o):
    """Batch-1 inference latency (eval mode, no_grad), per call, in milliseconds."""
    threads = set_threads(o)
    torch.manual_seed(0)
    if o['model'] == 'bert':
        model = Bert(o['config']).eval()
        t = o['seq']
        ids = torch.randint(1000, o['config']['vocab_size'], (1, t))
        inputs = (ids, torch.ones(1, t, dtype=torch.long), torch.zeros(1, t, dtype=torch.long))
    else:
        model = vision_model(o['model'], 1000).eval()
        inputs = (torch.randn(1, 3, o['size'], o['size']),)
    times = []
    with torch.no_grad():
        for _ in range(o['warmup']):
            model(*inputs)
        for _ in range(o['iters']):
            t0 = time.perf_counter()
            model(*inputs)
            times.append((time.perf_counter() - t0) * 1000)
    return {'threads': threads, 'p50Ms': pct(times, 50), 'p99Ms': pct(times, 99), 'meanMs': sum(times) / len(times)}


def task_checkpoint(o):
    """Writes a seeded ResNet-50 state dict with torch.save (the checkpoint both sides fine-tune from)."""
    import torchvision
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), o['path'])
    return {'path': o['path'], 'bytes': os.path.getsize(o['path'])}


def task_versions(o):
    import torchvision
    import PIL
    return {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'pillow': PIL.__version__,
            'python': sys.version.split()[0], 'defaultThreads': torch.get_num_threads(),
            'interopThreads': torch.get_num_interop_threads(), 'parallel': torch.__config__.parallel_info().split('\n')[0:6]}


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith('task_')}

if __name__ == '__main__':
    task, opts = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else '{}')
    if task not in TASKS:
        sys.exit(f'unknown task {task}; one of {", ".join(TASKS)}')
    result = TASKS[task](opts)
    result['side'] = 'pytorch'
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    result['cpuSeconds'] = sum(u.ru_utime + u.ru_stime for u in usage)  # with DataLoader workers
    print(json.dumps(result), flush=True)
