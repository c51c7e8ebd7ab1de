"""Fine-tunes the staged base model on the staged dataset, on CPU, and writes /out/model.

The example submission of reprobox (examples/submissions/honest). It reads exactly what the
manifest declares and reprobox stages read-only:

  /inputs/base_model/            config.json + model.safetensors: a Llama-shaped model
  /inputs/datasets/text/         train.txt: plain text, one token per byte

and trains the whole model on next-byte prediction for a fixed number of steps with a fixed seed
(REPROBOX_SEED, set by reprobox from the manifest's train.seed), printing `step N loss X`. The
result is a Hugging Face model directory at /out/model: the base config.json and the trained
weights as model.safetensors. Only the Python standard library and torch are used (the image has
no safetensors package, so the format is read and written here: an 8-byte little-endian header
length, a JSON header, raw little-endian data). No network; writes only under /out.
"""

import json
import math
import os
import pathlib
import struct
import sys
import time

import torch
import torch.nn.functional as F

BASE = pathlib.Path("/inputs/base_model")
DATA = pathlib.Path("/inputs/datasets/text/train.txt")
OUT = pathlib.Path("/out/model")

STEPS = 200
BATCH = 8
SEQ = 64
LR = 3e-3
LOG_EVERY = 25


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if meta["dtype"] != "F32":
            sys.exit(f"train.py: tensor {name} is {meta['dtype']}, this example reads F32 only")
        start, end = meta["data_offsets"]
        buf = bytearray(raw[base + start : base + end])
        out[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(meta["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    tmp.replace(path)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    """Rotary position embedding, Hugging Face Llama's rotate-half layout. x: [B, H, T, D]."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = torch.outer(torch.arange(x.shape[-2], dtype=torch.float32), inv)
    cos = torch.cat([ang.cos(), ang.cos()], -1)
    sin = torch.cat([ang.sin(), ang.sin()], -1)
    half = torch.cat([-x[..., d // 2 :], x[..., : d // 2]], -1)
    return x * cos + half * sin


def forward(p, cfg, ids):
    """The Llama forward pass written out: embeddings, pre-norm attention with RoPE and a causal
    mask, SwiGLU MLP, final norm, output head."""
    b, t = ids.shape
    h_n, d = cfg["num_attention_heads"], cfg["hidden_size"]
    hd = d // h_n
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    mask = torch.full((t, t), float("-inf")).triu(1)
    x = p["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{i}."
        h = rms_norm(x, p[pre + "input_layernorm.weight"], eps)
        q, k, v = (
            (h @ p[pre + f"self_attn.{n}_proj.weight"].T).view(b, t, h_n, hd).transpose(1, 2)
            for n in ("q", "k", "v")
        )
        q, k = rope(q, theta), rope(k, theta)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + o @ p[pre + "self_attn.o_proj.weight"].T
        h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ p[pre + "mlp.gate_proj.weight"].T) * (h @ p[pre + "mlp.up_proj.weight"].T)
        x = x + g @ p[pre + "mlp.down_proj.weight"].T
    x = rms_norm(x, p["model.norm.weight"], eps)
    return x @ p["lm_head.weight"].T


def main():
    seed = int(os.environ.get("REPROBOX_SEED", "0"))
    # One thread and deterministic kernels: the same inputs and seed give the same bytes.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    started = time.monotonic()

    cfg = json.loads((BASE / "config.json").read_text())
    params = read_safetensors(BASE / "model.safetensors")
    data = torch.tensor(list(DATA.read_bytes()), dtype=torch.long)
    if cfg["vocab_size"] < 256 or len(data) <= SEQ + 1:
        sys.exit("train.py: the base model needs a byte vocabulary and the dataset more than SEQ bytes")
    n_params = sum(t.numel() for t in params.values())
    print(f"torch {torch.__version__}, seed {seed}, {n_params} parameters, {len(data)} training bytes", flush=True)

    for t in params.values():
        t.requires_grad_(True)
    opt = torch.optim.AdamW(params.values(), lr=LR, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    for step in range(1, STEPS + 1):
        starts = torch.randint(0, len(data) - SEQ - 1, (BATCH,), generator=gen)
        batch = torch.stack([data[s : s + SEQ + 1] for s in starts.tolist()])
        logits = forward(params, cfg, batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step == 1 or step % LOG_EVERY == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)

    with torch.no_grad():
        prompt = list(b"Four score")
        ids = torch.tensor([prompt])
        for _ in range(40):
            nxt = forward(params, cfg, ids[:, -SEQ:])[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
        sample = bytes(ids[0].tolist()).decode("utf-8", errors="replace")
    print(f"sample: {sample!r}", flush=True)

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "config.json").write_bytes((BASE / "config.json").read_bytes())
    write_safetensors(OUT / "model.safetensors", params)
    print(f"wrote {OUT} in {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
