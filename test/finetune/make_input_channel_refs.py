# References for test/finetune/input-channels.test.ts: a torchvision ResNet-18
# (seeded, 10 classes) as resnet18.pth, and its conv1 weight adapted to 1, 2,
# 4 and 5 input channels by timm's adapt_input_conv rule, recomputed here
# (timm is not installed): 1 channel sums the RGB filters; n channels repeat
# them ceil(n/3) times, keep the first n and scale by 3/n.
# Usage: /usr/bin/python3 make_input_channel_refs.py OUTDIR
import math
import os
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
torch.save(model.state_dict(), os.path.join(out, 'resnet18.pth'))


def adapt_input_conv(in_chans, w):
    O, I, J, K = w.shape
    if in_chans == 1:
        return w.sum(dim=1, keepdim=True)
    repeat = int(math.ceil(in_chans / 3))
    return w.repeat(1, repeat, 1, 1)[:, :in_chans, :, :] * (3 / float(in_chans))


w = model.conv1.weight.detach()
torch.save({f'in{n}': adapt_input_conv(n, w).contiguous() for n in (1, 2, 4, 5)}, os.path.join(out, 'adapted.pth'))
