#!/usr/bin/python3
"""Checkpoint-format fixtures from PyTorch (Debian's python3-torch), generated at test time.

Usage: /usr/bin/python3 scripts/make-io-fixtures.py OUTDIR
Writes, into OUTDIR:
  dtypes.pth        a state dict with every dtype, a view sharing a storage, a transposed (non-contiguous) tensor
  wrapped.pth       the same dict under {"state_dict": ..., "epoch": 3}
  expected.json     the values of dtypes.pth, as Python sees them
  legacy.pth        the pre-1.6 (non-zip) torch.save format
  malicious.pth     a torch.save zip whose pickle calls os.system (must be refused, never run)
  scripted.pt       a TorchScript archive
  truncated.pth     dtypes.pth cut short
"""
import json
import os
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

base = torch.arange(12, dtype=torch.float32) * 0.5
m = torch.randn(3, 4)
sd = {
    'float32': torch.randn(2, 3),
    'float64': torch.randn(4, dtype=torch.float64),
    'float16': torch.randn(5).half(),
    'bfloat16': torch.randn(5).bfloat16(),
    'int64': torch.tensor([1, -2, 3 ** 30]),
    'int32': torch.tensor([7, -8], dtype=torch.int32),
    'uint8': torch.tensor([0, 255, 7], dtype=torch.uint8),
    'bool': torch.tensor([True, False, True]),
    'scalar': torch.tensor(2.5),
    'base': base,
    'view': base[2:8].view(2, 3),      # shares base's storage
    'transposed': m.t(),               # non-contiguous
}
torch.save(sd, os.path.join(out, 'dtypes.pth'))
torch.save({'state_dict': sd, 'epoch': 3}, os.path.join(out, 'wrapped.pth'))
torch.save(sd, os.path.join(out, 'legacy.pth'), _use_new_zipfile_serialization=False)
expected = {k: {'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape), 'data': v.double().reshape(-1).tolist() if v.dtype != torch.bool else v.reshape(-1).tolist()}
            for k, v in sd.items()}
with open(os.path.join(out, 'expected.json'), 'w') as f:
    json.dump({'keys': list(sd.keys()), 'values': expected}, f)


class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + os.path.join(out, 'PWNED'),))


torch.save({'weight': torch.ones(2), 'evil': Evil()}, os.path.join(out, 'malicious.pth'))


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


torch.jit.save(torch.jit.script(Tiny()), os.path.join(out, 'scripted.pt'))
data = open(os.path.join(out, 'dtypes.pth'), 'rb').read()
open(os.path.join(out, 'truncated.pth'), 'wb').write(data[: len(data) // 2])
print('ok')
