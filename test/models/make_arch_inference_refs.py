# .pth files written by torchvision 0.14 for test/models/infer-architecture.test.ts:
# ResNet-18 and ResNet-34 (same names up to the block counts), ResNet-50,
# EfficientNet-B0, a ResNet-18 cut after layer2 (fits ResNet-18 and -34 alike),
# and a state dict of no known architecture. Half precision keeps the files
# small: only names and shapes matter here (ResNet-18 stays float32, it is loaded).
# Usage: /usr/bin/python3 make_arch_inference_refs.py OUTDIR
import os
import sys

import torch
import torchvision

out = sys.argv[1]
torch.manual_seed(0)
r18 = torchvision.models.resnet18(num_classes=5).state_dict()
torch.save(r18, os.path.join(out, 'resnet18.pth'))
torch.save({k: v.half() for k, v in torchvision.models.resnet34(num_classes=5).state_dict().items()}, os.path.join(out, 'resnet34.pth'))
torch.save({k: v.half() for k, v in torchvision.models.resnet50().state_dict().items()}, os.path.join(out, 'resnet50.pth'))
torch.save({k: v.half() for k, v in torchvision.models.efficientnet_b0(num_classes=7).state_dict().items()}, os.path.join(out, 'efficientnet_b0.pth'))
torch.save({k: v for k, v in r18.items() if not k.startswith(('layer3', 'layer4', 'fc'))}, os.path.join(out, 'resnet18-to-layer2.pth'))
torch.save({'encoder.weight': torch.zeros(4, 3), 'decoder.bias': torch.zeros(3)}, os.path.join(out, 'unknown.pth'))
