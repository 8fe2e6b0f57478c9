#!/usr/bin/python3
"""One rank of the PyTorch side of bench/distributed.mjs (which starts the ranks).

Usage: RANK=r WORLD_SIZE=n MASTER_ADDR=127.0.0.1 MASTER_PORT=p /usr/bin/python3 bench/distributed_torch.py 'JSON-OPTIONS'

Mirrors bench/distributed.mjs's finetorch rank: torchvision's ResNet-18 (numClasses
outputs), random 64x64 images, SGD (lr 0.01, momentum 0.9), cross-entropy, batch
`batch` per rank, one thread. With WORLD_SIZE > 1 the model is wrapped in
torch.nn.parallel.DistributedDataParallel over Gloo and the data split by
DistributedSampler, as a PyTorch user writes it; with one process, the plain model and
a shuffled DataLoader. Prints one JSON line: the step-end times after the warm-up,
and the machine's CPU ticks and this process's CPU time over the timed steps (the
orchestrator derives how busy other processes kept the machine).
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
import torchvision


def cpu_ticks():
    """Busy and total CPU ticks of the whole machine, from /proc/stat."""
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    total = sum(fields)
    return {'busy': total - fields[3] - fields[4], 'total': total}


def main(o):
    torch.set_num_threads(int(o['threads']))
    rank = int(os.environ.get('RANK', '0'))
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world > 1:
        dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=o['classes'])
    model.train()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    steps = o['warmup'] + o['steps']
    b, s = o['batch'], o['size']
    g = torch.Generator().manual_seed(1)
    # every rank builds the whole data set; the sampler gives it its share
    x = torch.randn(world * b * steps, 3, s, s, generator=g)
    y = torch.randint(0, o['classes'], (world * b * steps,), generator=g)
    ds = torch.utils.data.TensorDataset(x, y)
    if world > 1:
        sampler = torch.utils.data.distributed.DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=1)
        loader = torch.utils.data.DataLoader(ds, batch_size=b, sampler=sampler)
    else:
        loader = torch.utils.data.DataLoader(ds, batch_size=b, shuffle=True, generator=torch.Generator().manual_seed(1))

    ends = []
    start = None
    for i, (xb, yb) in enumerate(loader):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        loss.item()
        now = time.perf_counter()
        if i == o['warmup'] - 1:
            start = {'t': now, 'ticks': cpu_ticks(), 'cpu': time.process_time()}
        elif i >= o['warmup']:
            ends.append(now - start['t'])
    stop = {'ticks': cpu_ticks(), 'cpu': time.process_time()}
    if world > 1:
        dist.destroy_process_group()
    return {
        'side': 'pytorch',
        'rank': rank,
        'worldSize': world,
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'images': len(ends) * b,
        'seconds': ends[-1],
        'stepEnds': ends,
        'windowBusyTicks': stop['ticks']['busy'] - start['ticks']['busy'],
        'windowTotalTicks': stop['ticks']['total'] - start['ticks']['total'],
        'windowCpuSeconds': stop['cpu'] - start['cpu'],
    }


if __name__ == '__main__':
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
