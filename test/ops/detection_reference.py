# Reference for test/ops/detection.test.ts: torchvision.ops (Debian's
# python3-torchvision 0.14, /usr/bin/python3) on the cases the test sends as
# JSON on stdin; the results go back as JSON on stdout.
#   roiAlign: the output and the input gradient of sum(output * gradWeight)
#   nms / batchedNms: the kept indices
#   boxes: box_area, box_iou (and its gradient for boxes1), clip_boxes_to_image, remove_small_boxes
#   multiScale: MultiScaleRoIAlign's output, scales, box levels and the feature maps' gradients
import json
import sys
from collections import OrderedDict

import torch
from torchvision import ops

torch.set_num_threads(1)


def dtype_of(name):
    return {'float32': torch.float32, 'float64': torch.float64}[name]


def roi_align_case(c):
    dtype = dtype_of(c['dtype'])
    x = torch.tensor(c['input'], dtype=dtype).reshape(c['shape']).requires_grad_()
    if c['boxesList']:
        boxes = [torch.tensor(b, dtype=dtype).reshape(-1, 4) for b in c['boxes']]
    else:
        boxes = torch.tensor(c['boxes'], dtype=dtype).reshape(-1, 5)
    out = ops.roi_align(x, boxes, c['outputSize'], spatial_scale=c['spatialScale'],
                        sampling_ratio=c['samplingRatio'], aligned=c['aligned'])
    weight = torch.tensor(c['gradWeight'], dtype=dtype).reshape(out.shape)
    (out * weight).sum().backward()
    return {'output': out.detach().reshape(-1).tolist(), 'shape': list(out.shape),
            'gradInput': x.grad.reshape(-1).tolist()}


def nms_case(c):
    dtype = dtype_of(c['dtype'])
    boxes = torch.tensor(c['boxes'], dtype=dtype).reshape(-1, 4)
    scores = torch.tensor(c['scores'], dtype=dtype)
    if c.get('idxs') is not None:
        keep = ops.batched_nms(boxes, scores, torch.tensor(c['idxs'], dtype=torch.int64), c['iouThreshold'])
    else:
        keep = ops.nms(boxes, scores, c['iouThreshold'])
    return keep.tolist()


def boxes_case(c):
    a = torch.tensor(c['boxes1'], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(c['boxes2'], dtype=torch.float64)
    iou = ops.box_iou(a, b)
    weight = torch.tensor(c['iouWeight'], dtype=torch.float64)
    (iou * weight).sum().backward()
    h, w = c['size']
    return {
        'area': ops.box_area(a.detach()).tolist(),
        'iou': iou.detach().reshape(-1).tolist(),
        'iouGrad': a.grad.reshape(-1).tolist(),
        'clipped': ops.clip_boxes_to_image(a.detach(), (h, w)).reshape(-1).tolist(),
        'small': ops.remove_small_boxes(a.detach(), c['minSize']).tolist(),
    }


def multi_scale_case(c):
    feats = OrderedDict()
    for name, shape, data in c['features']:
        feats[name] = torch.tensor(data, dtype=torch.float32).reshape(shape).requires_grad_()
    m = ops.MultiScaleRoIAlign(c['featmapNames'], c['outputSize'], c['samplingRatio'],
                               canonical_scale=c['canonicalScale'], canonical_level=c['canonicalLevel'])
    boxes = [torch.tensor(b, dtype=torch.float32).reshape(-1, 4) for b in c['boxes']]
    sizes = [tuple(s) for s in c['imageSizes']]
    out = m(feats, boxes, sizes)
    weight = torch.tensor(c['gradWeight'], dtype=torch.float32).reshape(out.shape)
    (out * weight).sum().backward()
    levels = m.map_levels(boxes).tolist() if len(c['featmapNames']) > 1 else []
    return {'output': out.detach().reshape(-1).tolist(), 'shape': list(out.shape), 'scales': m.scales, 'levels': levels,
            'grads': {name: (t.grad.reshape(-1).tolist() if t.grad is not None else None) for name, t in feats.items()}}


cases = json.load(sys.stdin)
json.dump({
    'roiAlign': [roi_align_case(c) for c in cases['roiAlign']],
    'nms': [nms_case(c) for c in cases['nms']],
    'boxes': [boxes_case(c) for c in cases['boxes']],
    'multiScale': [multi_scale_case(c) for c in cases['multiScale']],
}, sys.stdout)
