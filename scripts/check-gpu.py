"""The Python side of `npm run check:gpu` (scripts/check-gpu.mjs drives it).

Usage: python3 scripts/check-gpu.py TASK 'JSON-OPTIONS'
Prints one JSON line (the result) on stdout. Uses whatever torch / torchvision / transformers the
interpreter has (on the GPU machines: torch 2.11+cu130); a missing torchvision or transformers
turns the parts that need it into {"skipped": reason}, never an error.

Tasks
  versions   torch, torchvision, transformers versions; CUDA availability and the device
  prepare    writes into o.dir the models, inputs and reference outputs of the correctness checks:
             vision/<arch>.pth + <arch>-io.pth, text/<arch>/ (save_pretrained) + io.pth,
             optim.pth, train.pth, autocast.pth
  bench      training throughput of PyTorch (default, fused AdamW, + bf16 autocast, + channels_last)

All tensors are written with torch.save on the CPU; outputs computed on o.device are moved there first.
"""
import gc
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def optional_import(name):
    try:
        return __import__(name)
    except Exception as e:  # ImportError, or a broken install
        return None


torchvision = optional_import('torchvision')
transformers = optional_import('transformers')
if transformers is not None:
    try:
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:
        pass


def cpu(t):
    return t.detach().float().cpu().contiguous() if t.is_floating_point() else t.detach().cpu().contiguous()


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def two_groups(named, is_head, lr=(1e-4, 1e-3), **kw):
    """AdamW with two param groups (backbone, head), weight decay 0.01, as finetorch's benchmarks."""
    named = list(named)
    back = [p for n, p in named if not is_head(n)]
    head = [p for n, p in named if is_head(n)]
    return torch.optim.AdamW([{'params': back, 'lr': lr[0]}, {'params': head, 'lr': lr[1]}], weight_decay=0.01, **kw)


# ---- versions ----

def task_versions(o):
    out = {'torch': torch.__version__, 'torchvision': getattr(torchvision, '__version__', None),
           'transformers': getattr(transformers, '__version__', None), 'python': sys.version.split()[0],
           'cuda': torch.cuda.is_available(), 'cudaVersion': torch.version.cuda, 'cudnn': None, 'deviceName': None}
    if torch.cuda.is_available():
        out['deviceName'] = torch.cuda.get_device_name(0)
        out['cudnn'] = torch.backends.cudnn.version()
    return out


# ---- prepare: references for the correctness checks ----

def text_config(arch, size):
    """A BERT/RoBERTa/DistilBERT classifier config; size 'tiny' for smoke runs, 'small' otherwise."""
    h, layers, heads, ffn = (32, 2, 4, 37) if size == 'tiny' else (256, 4, 4, 1024)
    common = dict(vocab_size=1000, max_position_embeddings=128, num_labels=3, initializer_range=0.2)
    if arch == 'distilbert':
        return transformers.DistilBertConfig(dim=h, n_layers=layers, n_heads=heads, hidden_dim=ffn, pad_token_id=0, **common), \
            transformers.DistilBertForSequenceClassification
    if arch == 'bert':
        return transformers.BertConfig(hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                                       pad_token_id=0, **common), transformers.BertForSequenceClassification
    return transformers.RobertaConfig(hidden_size=h, num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=ffn,
                                      pad_token_id=1, **common), transformers.RobertaForSequenceClassification


def text_forward(model, arch, ids, mask, types):
    if arch == 'distilbert':
        return model(input_ids=ids, attention_mask=mask).logits
    return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits


def prepare_vision(o, dev):
    out = {}
    size = o['visionSize']
    os.makedirs(os.path.join(o['dir'], 'vision'), exist_ok=True)
    for i, arch in enumerate(o['vision']):
        t0 = time.time()
        try:
            torch.manual_seed(i)
            model = getattr(torchvision.models, arch)()
            model.eval()
            torch.save(model.state_dict(), os.path.join(o['dir'], 'vision', f'{arch}.pth'))
            x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(100 + i))
            with torch.no_grad():
                io = {'input': x, 'logits_cpu': cpu(model(x))}
                if dev != 'cpu':
                    model.to(dev)
                    io['logits_device'] = cpu(model(x.to(dev)))
                    if o.get('autocast'):
                        with torch.autocast(device_type='cuda', dtype=torch.bfloat16):
                            io['logits_bf16'] = cpu(model(x.to(dev)))
                elif o.get('autocast'):
                    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
                        io['logits_bf16'] = cpu(model(x))
            torch.save(io, os.path.join(o['dir'], 'vision', f'{arch}-io.pth'))
            out[arch] = {'seconds': time.time() - t0}
        except Exception as e:
            out[arch] = {'error': f'{type(e).__name__}: {e}'}
        model = None
        gc.collect()
    return out


def prepare_text(o, dev):
    out = {}
    for i, arch in enumerate(['bert', 'roberta', 'distilbert']):
        try:
            config, cls = text_config(arch, o['textSize'])
            config._attn_implementation = 'sdpa'
            torch.manual_seed(10 + i)
            model = cls(config).eval()
            folder = os.path.join(o['dir'], 'text', arch)
            model.save_pretrained(folder, safe_serialization=True)
            pad = config.pad_token_id
            lengths = [24, 17, 9, 24]
            T = max(lengths)
            ids = torch.randint(3, config.vocab_size, (len(lengths), T), generator=torch.Generator().manual_seed(20 + i))
            mask = torch.zeros(len(lengths), T, dtype=torch.long)
            for r, n in enumerate(lengths):
                mask[r, :n] = 1
            ids = torch.where(mask.bool(), ids, torch.full_like(ids, pad))
            types = torch.zeros_like(ids)
            with torch.no_grad():
                io = {'input_ids': ids, 'attention_mask': mask, 'token_type_ids': types,
                      'logits_cpu': cpu(text_forward(model, arch, ids, mask, types))}
                if dev != 'cpu':
                    model.to(dev)
                    io['logits_device'] = cpu(text_forward(model, arch, ids.to(dev), mask.to(dev), types.to(dev)))
            torch.save(io, os.path.join(folder, 'io.pth'))
            out[arch] = {'ok': True}
        except Exception as e:
            out[arch] = {'error': f'{type(e).__name__}: {e}'}
    return out


def mlp():
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))


def prepare_optim(o, dev):
    """A small MLP, AdamW with two groups, a few steps on a fixed batch: parameters after each implementation."""
    torch.manual_seed(3)
    model = mlp()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(16, 32, generator=g), torch.randint(0, 10, (16,), generator=g)
    steps = o['optimSteps']
    io = {'x': x, 'y': y, **{f'start.{k}': v for k, v in start.items()}}
    done, unavailable = [], {}
    for impl in ['foreach', 'fused', 'forloop']:
        kw = {'foreach': {'foreach': True}, 'fused': {'fused': True}, 'forloop': {'foreach': False}}[impl]
        try:
            m = mlp()
            m.load_state_dict(start)
            m.to(dev)
            opt = two_groups(m.named_parameters(), lambda n: n.startswith('2.'), lr=(1e-3, 1e-2), **kw)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(x.to(dev)), y.to(dev)).backward()
                opt.step()
            io.update({f'{impl}.{k}': cpu(v) for k, v in m.state_dict().items()})
            done.append(impl)
        except Exception as e:  # fused AdamW needs torch 2.0 (CUDA) / 2.4 (CPU)
            unavailable[impl] = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
    torch.save(io, os.path.join(o['dir'], 'optim.pth'))
    return {'implementations': done, 'unavailable': unavailable, 'steps': steps}


def prepare_train(o, dev):
    """One training step of ResNet-18 (batch norm in train mode), SGD with momentum (its update is
    continuous in the gradient, so TF32 noise stays small; AdamW's first step is ~lr * sign(grad))."""
    torch.manual_seed(5)
    model = torchvision.models.resnet18(num_classes=10)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(start, os.path.join(o['dir'], 'train-start.pth'))
    s = o['trainSize']
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(8, 3, s, s, generator=g), torch.randint(0, 10, (8,), generator=g)
    model.to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt.zero_grad(set_to_none=True)
    logits = model(x.to(dev))
    loss = F.cross_entropy(logits, y.to(dev))
    loss.backward()
    opt.step()
    io = {'x': x, 'y': y, 'loss': cpu(loss).reshape(1), 'logits': cpu(logits),
          **{f'grad.{k}': cpu(p.grad) for k, p in model.named_parameters()},
          **{f'after.{k}': cpu(v) for k, v in model.state_dict().items()}}
    torch.save(io, os.path.join(o['dir'], 'train.pth'))
    return {'loss': float(loss)}


def prepare_autocast(o, dev):
    """Eval logits under bf16 autocast: an MLP (Linear runs in bf16) and a softmax (autocast keeps it in fp32 on CUDA)."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 10)).eval()
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(8))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    model.to(dev)
    dtype = torch.bfloat16
    with torch.no_grad(), torch.autocast(device_type='cuda' if dev != 'cpu' else 'cpu', dtype=dtype):
        h = model[0](x.to(dev))
        logits = model(x.to(dev))
        probs = logits.softmax(-1)
    io = {'x': x, 'logits': cpu(logits), 'probs': cpu(probs), **{f'start.{k}': v for k, v in start.items()}}
    torch.save(io, os.path.join(o['dir'], 'autocast.pth'))
    return {'dtypes': {'linear': str(h.dtype), 'logits': str(logits.dtype), 'softmax': str(probs.dtype)}}


def task_prepare(o):
    dev = o['device']
    if dev != 'cpu' and not torch.cuda.is_available():
        return {'error': f'torch {torch.__version__} sees no CUDA device'}
    os.makedirs(o['dir'], exist_ok=True)
    out = {}
    parts = [('vision', prepare_vision, torchvision, 'torchvision is not installed'),
             ('text', prepare_text, transformers, 'transformers is not installed'),
             ('optim', prepare_optim, True, None),
             ('train', prepare_train, torchvision, 'torchvision is not installed'),
             ('autocast', prepare_autocast, True, None)]
    for name, fn, needs, why in parts:
        if name not in o['parts']:
            continue
        if not needs:
            out[name] = {'skipped': why}
            continue
        t0 = time.time()
        try:
            out[name] = fn(o, dev)
        except Exception as e:
            out[name] = {'error': f'{type(e).__name__}: {e}'}
        out[name]['seconds'] = time.time() - t0
        gc.collect()
        if dev != 'cpu':
            torch.cuda.empty_cache()
    return out


# ---- bench: PyTorch training throughput ----

def bench_vision_model(arch):
    return getattr(torchvision.models, arch)(num_classes=1000)


def run_timed(step, warmup, steps, device):
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - t0


def bench_one(w, variant, o):
    """One workload in one variant: {'perSecond', 'peakMB'} or {'skipped': why} (an option this torch lacks)."""
    try:
        return bench_run(w, variant, o)
    except (RuntimeError, TypeError, ValueError) as e:
        return {'skipped': f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'}


def bench_run(w, variant, o):
    dev = o['device']
    fused = variant in ('fused', 'fused+bf16', 'fused+bf16+cl')
    bf16 = variant in ('fused+bf16', 'fused+bf16+cl')
    cl = variant == 'fused+bf16+cl'
    torch.manual_seed(0)
    if dev != 'cpu':
        torch.cuda.reset_peak_memory_stats()
    kw = {'fused': True} if fused else {}
    if w['kind'] == 'vision':
        if torchvision is None:
            return {'skipped': 'torchvision is not installed'}
        model = bench_vision_model(w['model']).to(dev).train()
        x = torch.randn(w['batch'], 3, w['size'], w['size'], device=dev)
        y = torch.randint(0, 1000, (w['batch'],), device=dev)
        if cl:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        opt = two_groups(model.named_parameters(), lambda n: n.startswith('fc.'), **kw)
        forward = lambda: model(x)
    else:
        if transformers is None:
            return {'skipped': 'transformers is not installed'}
        c = w['config']
        config = transformers.BertConfig(**c)
        config._attn_implementation = 'sdpa'
        model = transformers.BertForSequenceClassification(config).to(dev).train()
        ids = torch.randint(1000, c['vocab_size'], (w['batch'], w['seq']), device=dev)
        mask = torch.ones_like(ids)
        types = torch.zeros_like(ids)
        y = torch.randint(0, c['num_labels'], (w['batch'],), device=dev)
        opt = two_groups(model.named_parameters(), lambda n: n.startswith('classifier.'), **kw)
        forward = lambda: model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    ac_dev = 'cuda' if dev != 'cpu' else 'cpu'

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=ac_dev, dtype=torch.bfloat16, enabled=bf16):
            out = forward()
            loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()

    seconds = run_timed(step, o['warmup'], o['steps'], dev)
    per = w['batch'] * o['steps'] / seconds
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if dev != 'cpu' else None
    return {'perSecond': per, 'peakMB': peak, 'seconds': seconds}


def task_bench(o):
    out = {}
    for w in o['workloads']:
        for variant in w['variants']:
            key = f"{w['key']}/{variant}"
            try:
                out[key] = bench_one(w, variant, o)
            except Exception as e:
                out[key] = {'error': f'{type(e).__name__}: {str(e).splitlines()[0][:300]}'}
            gc.collect()
            if o['device'] != 'cpu':
                torch.cuda.empty_cache()
            print(f'[check-gpu.py] {key}: {json.dumps(out[key])}', file=sys.stderr, flush=True)
    return out


TASKS = {'versions': task_versions, 'prepare': task_prepare, 'bench': task_bench}

if __name__ == '__main__':
    task, opts = sys.argv[1], json.loads(sys.argv[2] if len(sys.argv) > 2 else '{}')
    if task not in TASKS:
        sys.exit(f'unknown task {task}; one of {", ".join(TASKS)}')
    if opts.get('threads'):
        torch.set_num_threads(int(opts['threads']))
    print(json.dumps(TASKS[task](opts)), flush=True)
