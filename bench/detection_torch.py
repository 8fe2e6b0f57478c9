#!/usr/bin/python3
"""The PyTorch side of the detection benchmark (bench/detection.mjs drives it).

Usage:
  /usr/bin/python3 bench/detection_torch.py make-model DIR 'JSON-OPTIONS'
      builds torchvision 0.14's Faster R-CNN ResNet-50 FPN as its fine-tuning
      recipe does (FrozenBatchNorm2d in the body, trainable_backbone_layers,
      num_classes), seeded, and saves DIR/model.pth. The body's BatchNorm
      statistics are real (two passes over a few of the benchmark's images in a
      BatchNorm2d twin), so fifty layers keep activations in range.
  /usr/bin/python3 bench/detection_torch.py train|eval DIR 'JSON-OPTIONS'
      loads DIR/model.pth and DIR/images.bin (float32 [N, 3, H, W]) with
      DIR/meta.json (boxes, labels), then times training steps (SGD with
      momentum, the sum of the four losses, as torchvision's reference loop) or
      eval-mode detection of one image at a time. Prints one JSON line.
"""
import json
import os
import sys
import time

import torch
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.misc import FrozenBatchNorm2d


def cpu_ticks():
    """Busy and total CPU ticks of the whole machine, from /proc/stat."""
    with open('/proc/stat') as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    total = sum(fields)
    return {'busy': total - fields[3] - fields[4], 'total': total}


def build(o, body):
    return FasterRCNN(
        _resnet_fpn_extractor(body, o['trainableBackboneLayers']),
        num_classes=o['numClasses'],
        min_size=o['minSize'],
        max_size=o['maxSize'],
        rpn_pre_nms_top_n_train=o['rpnPreNmsTopNTrain'],
        rpn_post_nms_top_n_train=o['rpnPostNmsTopNTrain'],
        rpn_pre_nms_top_n_test=o['rpnPreNmsTopNTest'],
        rpn_post_nms_top_n_test=o['rpnPostNmsTopNTest'],
        rpn_batch_size_per_image=o['rpnBatchSizePerImage'],
        box_batch_size_per_image=o['boxBatchSizePerImage'],
    )


def load_data(d):
    with open(os.path.join(d, 'meta.json')) as f:
        meta = json.load(f)
    n, c, h, w = meta['shape']
    with open(os.path.join(d, 'images.bin'), 'rb') as f:
        flat = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
    images = list(flat.view(n, c, h, w).unbind(0))
    targets = [{'boxes': torch.tensor(t['boxes'], dtype=torch.float32).reshape(-1, 4), 'labels': torch.tensor(t['labels'], dtype=torch.int64)}
               for t in meta['targets']]
    return images, targets


def make_model(d, o):
    torch.manual_seed(0)
    images, _ = load_data(d)
    body = resnet50(weights=None)
    for m in body.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative averages
    body.train()
    with torch.no_grad():
        for _ in range(2):
            body(torch.stack(images[:4]))
    frozen = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    frozen.load_state_dict({k: v for k, v in body.state_dict().items() if not k.endswith('num_batches_tracked')})
    model = build(o, frozen)
    with torch.no_grad():
        # the random box head's logits on these features are large (a first loss_classifier near 26, gradient norms in the hundreds):
        # scaled so that SGD starts from losses near a fine-tuning run's and stays finite
        model.roi_heads.box_head.fc6.weight.mul_(0.1)
        model.roi_heads.box_predictor.cls_score.weight.mul_(0.1)
        # and the random pyramid's outputs brought nearer the unit scale a trained one has
        for block in model.backbone.fpn.layer_blocks:
            block[0].weight.mul_(0.1)
    torch.save(model.state_dict(), os.path.join(d, 'model.pth'))
    return {'saved': os.path.join(d, 'model.pth')}


def run(task, d, o):
    torch.set_num_threads(o['threads'])
    images, targets = load_data(d)
    model = build(o, resnet50(weights=None, norm_layer=FrozenBatchNorm2d))
    model.load_state_dict(torch.load(os.path.join(d, 'model.pth')))
    n = len(images)
    times, losses, detections = [], [], []
    start = None
    if task == 'train':
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=o['lr'], momentum=0.9, weight_decay=1e-4)
        b = o['batch']
        for step in range(o['warmup'] + o['steps']):
            if step == o['warmup']:
                start = {'ticks': cpu_ticks(), 'cpu': time.process_time()}
            idx = [(step * b + j) % n for j in range(b)]
            torch.manual_seed(step)
            t0 = time.perf_counter()
            loss_dict = model([images[i] for i in idx], [targets[i] for i in idx])
            loss = sum(loss_dict.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step >= o['warmup']:
                times.append(time.perf_counter() - t0)
    else:
        model.eval()
        with torch.no_grad():
            for it in range(o['warmup'] + o['iters']):
                if it == o['warmup']:
                    start = {'ticks': cpu_ticks(), 'cpu': time.process_time()}
                t0 = time.perf_counter()
                out = model([images[it % n]])
                detections.append(len(out[0]['boxes']))
                if it >= o['warmup']:
                    times.append(time.perf_counter() - t0)
    stop = {'ticks': cpu_ticks(), 'cpu': time.process_time()}
    return {
        'side': 'pytorch',
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'times': times,
        'losses': losses,
        'detections': detections,
        'windowBusyTicks': stop['ticks']['busy'] - start['ticks']['busy'],
        'windowTotalTicks': stop['ticks']['total'] - start['ticks']['total'],
        'windowCpuSeconds': stop['cpu'] - start['cpu'],
    }


if __name__ == '__main__':
    task, d, o = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    result = make_model(d, o) if task == 'make-model' else run(task, d, o)
    print(json.dumps(result), flush=True)
