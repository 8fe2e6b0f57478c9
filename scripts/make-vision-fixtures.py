#!/usr/bin/python3
"""Reference checkpoints and outputs from torchvision (Debian's python3-torchvision 0.14)
for finetorch's model parity tests. Generated at test time, not committed (they are large).

Usage: /usr/bin/python3 scripts/make-vision-fixtures.py OUTDIR ARCH [ARCH ...]
For each ARCH writes OUTDIR/ARCH.pth (torch.save of the state dict), OUTDIR/ARCH.safetensors
(written by the small writer below, not by finetorch) and OUTDIR/ARCH.io.safetensors with the
input and eval-mode output. For resnet18 also OUTDIR/resnet18.train.safetensors: one SGD
training step in train mode (loss, gradients, BatchNorm statistics, updated weights),
and resnet18.script.pt / resnet18.trace.pt (torch.jit.script / torch.jit.trace).
"""
import json
import os
import struct
import sys

import torch
import torch.nn.functional as F
import torchvision

DTYPES = {torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.int64: 'I64'}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def calibrate(model, size):
    """Realistic BatchNorm: random affine parameters, then running statistics
    measured on random inputs (as after pretraining), so activations stay
    normalised even in the 152-layer nets and eval mode is really exercised."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
            m.weight.normal_(1, 0.1)
            m.bias.normal_(0, 0.1)
        model.train()
        for _ in range(3):
            model(torch.randn(8, 3, size, size))
    for m in bns:
        m.momentum = 0.1


def main():
    out, archs = sys.argv[1], sys.argv[2:]
    # The same intra-op thread count as finetorch's default (all available
    # cores): libtorch's conv kernels split work by thread count, and float
    # sums in another order differ in the last bits (1e-4 on ResNet-152 at 1
    # vs 2 threads; bit-identical at equal counts).
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    os.makedirs(out, exist_ok=True)
    for arch in archs:
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(num_classes=10)
        size = 32 if arch.startswith('vgg') else 64
        calibrate(model, size)
        model.eval()
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            y = model(x)
        sd = model.state_dict()
        torch.save(sd, os.path.join(out, arch + '.pth'))
        write_safetensors(os.path.join(out, arch + '.safetensors'), sd)
        write_safetensors(os.path.join(out, arch + '.io.safetensors'), {'input': x, 'output': y})
        if arch == 'resnet18':
            # TorchScript versions of the same weights (scripted keeps train/eval
            # switchable; traced bakes in the eval mode it was traced in)
            torch.jit.script(model).save(os.path.join(out, 'resnet18.script.pt'))
            torch.jit.trace(model, x).save(os.path.join(out, 'resnet18.trace.pt'))
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            target = torch.tensor([3, 7])
            loss = F.cross_entropy(model(x), target)
            loss.backward()
            grads = {'grad.conv1.weight': model.conv1.weight.grad, 'grad.layer3.1.bn2.weight': model.layer3[1].bn2.weight.grad,
                     'grad.fc.weight': model.fc.weight.grad}
            opt.step()
            after = {'after.' + k: v for k, v in model.state_dict().items()
                     if k in ('conv1.weight', 'bn1.running_mean', 'bn1.running_var', 'layer4.1.bn2.running_var', 'fc.bias')}
            write_safetensors(os.path.join(out, 'resnet18.train.safetensors'), {'loss': loss.detach().reshape(1), 'target': target, **grads, **after})
        print('wrote', arch, flush=True)


main()
