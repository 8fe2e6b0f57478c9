# References for test/data/image-transforms.test.ts: real photo files (sklearn's
# china.jpg and flower.jpg, re-sized with PIL and written as PNG) and what
# torchvision 0.14's transforms on PIL images make of them, as float32 CHW.
# Usage: /usr/bin/python3 make_image_transform_refs.py OUTDIR
import json
import os
import sys

import numpy as np
import torchvision.transforms as T
from PIL import Image

out = sys.argv[1]
photos = '/usr/lib/python3/dist-packages/sklearn/datasets/images'
china = Image.open(os.path.join(photos, 'china.jpg')).convert('RGB')
flower = Image.open(os.path.join(photos, 'flower.jpg')).convert('RGB')

# (name, source, width, height): landscape and portrait, shrinking and enlarging, a side already at the size
images = [
    ('landscape', china, 640, 427),
    ('wide', china, 500, 301),
    ('portrait', flower, 173, 200),
    ('tie', flower, 385, 256),  # CenterCrop(224) left offset (385-224)/2 = 80.5: Python rounds it to 80
    ('small', china, 40, 30),  # smaller than the crop: torchvision pads
]
cases = []
for name, src, w, h in images:
    path = os.path.join(out, f'{name}.png')
    src.resize((w, h), Image.BICUBIC).save(path)
    cases.append((path, name))


def ops_of(t):
    if isinstance(t, T.Resize):
        return {'resize': t.size}
    if isinstance(t, T.CenterCrop):
        return {'centerCrop': list(t.size)}
    if isinstance(t, T.RandomResizedCrop):
        return {'randomResizedCrop': list(t.size), 'scale': list(t.scale), 'ratio': list(t.ratio)}
    raise ValueError(t)


pipelines = {
    'landscape': [[T.Resize(256), T.CenterCrop(224)], [T.Resize(64), T.CenterCrop(56)]],
    'wide': [[T.Resize(256), T.CenterCrop(224)], [T.Resize(32), T.CenterCrop(28)]],
    'portrait': [[T.Resize(256), T.CenterCrop(224)], [T.Resize(48), T.CenterCrop(40)]],
    'tie': [[T.Resize(256), T.CenterCrop(224)]],
    # a scale no crop can have: torchvision's fallback (the centre at the nearest allowed ratio), deterministic
    'small': [[T.CenterCrop(48)], [T.RandomResizedCrop(24, scale=(5.0, 6.0))]],
}
refs = []
for path, name in cases + [(os.path.join(photos, 'china.jpg'), 'jpeg')]:
    for k, ts in enumerate(pipelines.get(name, [[T.Resize(64), T.CenterCrop(56)]])):
        img = Image.open(path).convert('RGB')
        resized = None
        for t in ts:
            img = t(img)
            if isinstance(t, T.Resize):
                resized = list(img.size)  # (width, height)
        x = T.ToTensor()(img).numpy().astype('<f4')
        ref = os.path.join(out, f'{name}-{k}.f32')
        x.tofile(ref)
        refs.append({'file': path, 'name': name, 'ops': [ops_of(t) for t in ts], 'resized': resized, 'shape': list(x.shape), 'ref': ref})
json.dump(refs, open(os.path.join(out, 'refs.json'), 'w'), indent=1)
