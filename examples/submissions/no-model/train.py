"""Reads its inputs, reports progress, and forgets to save: /out/model never appears."""

import os

text = open("/inputs/datasets/text/train.txt", encoding="utf-8").read()
for step in range(1, 4):
    print(f"step {step}/3 loss {3.0 / step:.3f}", flush=True)
print(f"read {len(text)} bytes; seed {os.environ.get('REPROBOX_SEED')}; saving is left for later")
