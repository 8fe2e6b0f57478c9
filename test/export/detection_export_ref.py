# Reference for test/export/detection-export.test.ts (Debian's python3-torch
# 1.13, torchvision 0.14): loads finetorch's exported .pth strictly into
# torchvision's fasterrcnn_resnet50_fpn(weights=None) (BatchNorm2d in the
# body) and into the same model built with FrozenBatchNorm2d, and writes both
# models' eval detections on the given images.
# usage: detection_export_ref.py model.pth images.pth kwargs.json out.json
import json
import sys

import torch
from torchvision.models import resnet50
from torchvision.models.detection import fasterrcnn_resnet50_fpn
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FasterRCNN
from torchvision.ops.misc import FrozenBatchNorm2d

model_path, images_path, kwargs_path, out_path = sys.argv[1:5]
torch.set_num_threads(1)
kwargs = json.load(open(kwargs_path))
state = torch.load(model_path, weights_only=True)
images = torch.load(images_path, weights_only=True)
images = [images[f"image{i}"] for i in range(len(images))]


def detect(model):
    model.load_state_dict(state, strict=True)  # raises on any missing or unexpected key
    model.eval()
    with torch.no_grad():
        return [{k: d[k].tolist() for k in ("boxes", "scores", "labels")} for d in model(images)]


batchnorm = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, **kwargs)
out = {"batchnormBody": type(batchnorm.backbone.body.bn1).__name__, "batchnorm": detect(batchnorm)}
num_classes = kwargs.pop("num_classes")
frozen = FasterRCNN(_resnet_fpn_extractor(resnet50(norm_layer=FrozenBatchNorm2d), 3), num_classes=num_classes, **kwargs)
out["frozenBody"] = type(frozen.backbone.body.bn1).__name__
out["frozen"] = detect(frozen)
json.dump(out, open(out_path, "w"))
