#!/usr/bin/python3
# Reference for the demo checkpoint: rebuilds the narrow ResNet-18 from
# torchvision's BasicBlock, loads the .safetensors (parsed here by hand: the
# format is an 8-byte header length, a JSON header and raw little-endian
# data), and writes its logits on the first 64 Fashion-MNIST test images plus
# its accuracy on all test images of classes 0-4.
#   /usr/bin/python3 scripts/make-demo-reference.py OUTDIR CHECKPOINT
import gzip, json, os, struct, sys
import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

out_dir, checkpoint = sys.argv[1], sys.argv[2]
torch.set_num_threads(len(os.sched_getaffinity(0)))

def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    dtypes = {'F32': np.float32, 'I64': np.int64}
    tensors = {}
    for name, h in header.items():
        a, b = h['data_offsets']
        tensors[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtypes[h['dtype']]).reshape(h['shape']).copy())
    return tensors, meta

class NarrowResNet(nn.Module):
    def __init__(self, width, in_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        inplanes = width
        for i, (planes, stride) in enumerate([(width, 1), (width * 2, 2), (width * 4, 2), (width * 8, 2)]):
            blocks = []
            for j in range(2):
                s = stride if j == 0 else 1
                down = None
                if s != 1 or inplanes != planes:
                    down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, s, bias=False), nn.BatchNorm2d(planes))
                blocks.append(BasicBlock(inplanes, planes, s, down))
                inplanes = planes
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width * 8, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        for l in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = l(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))

sd, meta = read_safetensors(checkpoint)
opts = json.loads(meta['finetorch.options'])
assert meta['finetorch.arch'] == 'resnet18' and opts['smallStem'], meta
model = NarrowResNet(opts['width'], opts['inChannels'], opts['numClasses'])
model.load_state_dict(sd, strict=True)
model.eval()

def idx(path):
    with gzip.open(path) as f:
        buf = f.read()
    dims = buf[3]
    shape = struct.unpack('>' + 'I' * dims, buf[4:4 + 4 * dims])
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

images = idx('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')
labels = idx('/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz').astype(np.int64)
x = (torch.from_numpy(images.astype(np.float32)).unsqueeze(1) / 255 - 0.286) / 0.353
with torch.no_grad():
    logits64 = model(x[:64])
    keep = torch.from_numpy(labels < 5)
    pred = torch.cat([model(b).argmax(1) for b in x[keep].split(500)])
    accuracy = (pred == torch.from_numpy(labels)[keep]).double().mean().item()
with open(os.path.join(out_dir, 'demo-reference.json'), 'w') as f:
    json.dump({'logits64': logits64.tolist(), 'accuracy0to4': accuracy, 'count0to4': int(keep.sum())}, f)
