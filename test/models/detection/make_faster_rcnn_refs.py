# Reference for test/models/detection/faster-rcnn.test.ts: torchvision 0.14's
# Faster R-CNN ResNet-50 FPN (the structure fasterrcnn_resnet50_fpn builds for
# pretrained weights: FrozenBatchNorm2d in the body, trainable layers 3), seeded,
# small sizes, saved as a .pth with images and its eval detections.
# Train mode: the four losses and a few parameters' gradients of their sum, for
# targets with the samplers taking everything (batch sizes of 10^6).
# Usage: /usr/bin/python3 make_faster_rcnn_refs.py OUTDIR
import json, os, sys
import torch
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.misc import FrozenBatchNorm2d

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
K = 5
GRAD_NAMES = ['roi_heads.box_predictor.cls_score.weight', 'roi_heads.box_predictor.bbox_pred.bias', 'roi_heads.box_head.fc6.weight',
              'rpn.head.cls_logits.weight', 'rpn.head.bbox_pred.weight', 'rpn.head.conv.0.0.weight', 'backbone.fpn.inner_blocks.0.0.weight',
              'backbone.body.layer2.0.conv1.weight', 'backbone.body.layer4.2.conv3.weight']
images = [torch.rand(3, 100, 140), torch.rand(3, 120, 90)]

# A body whose BatchNorm statistics are real (cumulative over two passes on the images), then frozen,
# so activations stay in a sensible range through fifty layers.
body = resnet50(weights=None)
for m in body.modules():
    if isinstance(m, torch.nn.BatchNorm2d):
        m.momentum = None
body.train()
with torch.no_grad():
    for _ in range(2):
        body(torch.stack([torch.nn.functional.interpolate(i[None], size=(96, 96))[0] for i in images]))
frozen = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
sd = {k: v for k, v in body.state_dict().items() if not k.endswith('num_batches_tracked')}
frozen.load_state_dict(sd)
for m in frozen.modules():
    if isinstance(m, FrozenBatchNorm2d):
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_(0, 0.1)

model = FasterRCNN(_resnet_fpn_extractor(frozen, 3), num_classes=K, min_size=128, max_size=192,
                   rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=100, box_score_thresh=0.01,
                   box_detections_per_img=300, rpn_pre_nms_top_n_train=200, rpn_post_nms_top_n_train=100,
                   # samplers that take every anchor and proposal: the losses do not depend on random draws
                   rpn_batch_size_per_image=1000000, box_batch_size_per_image=1000000)
with torch.no_grad():
    # random heads score near-uniformly: sharper logits so that classes and anchors win
    # the random pyramid's maps are in the thousands: bring them near 1
    for block in model.backbone.fpn.layer_blocks:
        block[0].weight.mul_(1e-3)
    model.rpn.head.cls_logits.weight.mul_(30)
    model.roi_heads.box_predictor.cls_score.weight.mul_(3)
    model.roi_heads.box_predictor.bbox_pred.weight.mul_(1)
model.eval()
torch.save(model.state_dict(), os.path.join(out, 'model.pth'))
with torch.no_grad():
    dets = model(images)
with open(os.path.join(out, 'images.json'), 'w') as f:
    json.dump([{'shape': list(i.shape), 'data': i.flatten().tolist()} for i in images], f)
with open(os.path.join(out, 'eval.json'), 'w') as f:
    json.dump([{k: v.tolist() for k, v in d.items()} for d in dets], f)
print([len(d['boxes']) for d in dets], file=sys.stderr)

targets = [
    {'boxes': torch.tensor([[10.0, 12.0, 60.0, 70.0], [70.0, 20.0, 130.0, 95.0], [5.0, 50.0, 40.0, 98.0]]), 'labels': torch.tensor([1, 3, 4])},
    {'boxes': torch.tensor([[20.0, 30.0, 85.0, 110.0]]), 'labels': torch.tensor([2])},
]
model.train()
losses = model(images, targets)
total = sum(losses.values())
total.backward()
grads = {name: p.grad.norm().item() for name, p in model.named_parameters()
         if name in GRAD_NAMES}
# an image without objects: every anchor and proposal of it is background
with torch.no_grad():
    empty = model(images, [targets[0], {'boxes': torch.zeros(0, 4), 'labels': torch.zeros(0, dtype=torch.int64)}])
with open(os.path.join(out, 'train.json'), 'w') as f:
    json.dump({'targets': [{k: v.tolist() for k, v in t.items()} for t in targets],
               'losses': {k: v.item() for k, v in losses.items()}, 'gradNorms': grads,
               'lossesWithEmptyImage': {k: v.item() for k, v in empty.items()}}, f)
print(losses, grads, file=sys.stderr)
