# Reference for test/models/detection/norm-layer.test.ts: torchvision 0.14's
# fasterrcnn_resnet50_fpn built with no weights (weights=None,
# weights_backbone=None), which puts nn.BatchNorm2d in the body and trains all
# five stages. Saved as a .pth before any step; then, in train mode, the four
# losses for fixed targets (samplers taking every anchor and proposal) and the
# running statistics the forward pass left in a few BatchNorm layers; which
# parameters train (all five stages: the stem's BatchNorm included).
# Usage: /usr/bin/python3 make_norm_layer_refs.py OUTDIR
import json, os, sys
import torch
from torchvision.models.detection import fasterrcnn_resnet50_fpn

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=3, min_size=64, max_size=64,
                                rpn_pre_nms_top_n_train=100, rpn_post_nms_top_n_train=50,
                                rpn_batch_size_per_image=1000000, box_batch_size_per_image=1000000)
assert isinstance(model.backbone.body.bn1, torch.nn.BatchNorm2d)
torch.save(model.state_dict(), os.path.join(out, 'model.pth'))
images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
targets = [{'boxes': torch.tensor([[5., 6., 40., 44.]]), 'labels': torch.tensor([1])},
           {'boxes': torch.tensor([[10., 2., 30., 60.], [35., 30., 62., 61.]]), 'labels': torch.tensor([2, 1])}]
model.train()
losses = model(images, targets)
sd = model.state_dict()
names = ['backbone.body.bn1.running_mean', 'backbone.body.bn1.running_var', 'backbone.body.layer1.0.downsample.1.running_mean',
         'backbone.body.layer4.2.bn3.running_var']
with open(os.path.join(out, 'refs.json'), 'w') as f:
    json.dump({
        'images': [{'shape': list(i.shape), 'data': i.flatten().tolist()} for i in images],
        'targets': [{'boxes': t['boxes'].tolist(), 'labels': t['labels'].tolist()} for t in targets],
        'losses': {k: v.item() for k, v in losses.items()},
        'stats': {n: sd[n].tolist() for n in names},
        'numBatchesTracked': sd['backbone.body.bn1.num_batches_tracked'].item(),
        'trainable': [n for n, p in model.named_parameters() if p.requires_grad],
    }, f)
