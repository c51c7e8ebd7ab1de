"""The demo organizer's evaluator: a stand-in for the NeurIPS 2023 HELM image (`llm-eval`), which
cannot be fetched here, built by scripts/images as reprobox/eval-demo:1.

reprobox runs it in the sandbox with the rebuilt model mounted read-only at $REPROBOX_MODEL, and
it writes $REPROBOX_SCORES in the format of docs/evaluation.md ("The harness evaluator"). For each
task named in $REPROBOX_TASKS it reads tasks/<task>.txt (short public-domain passages) and asks
the model for the next byte at EXAMPLES evenly spaced positions, with the CONTEXT bytes before it
as the prompt: an example scores 1 when the greedy prediction is the true byte, else 0, and the
task's score is the mean. A dry run ($REPROBOX_DRY_RUN=1) scores at most
$REPROBOX_DRY_RUN_EXAMPLES examples per task.

The model is a Hugging Face Llama directory (config.json, model.safetensors with F32 tensors) with
a byte vocabulary; this image has torch but not transformers, so the forward pass is written out
here, independently of any submission's code. One thread: the same model gives the same scores.
"""

import json
import math
import os
import pathlib
import struct
import sys

import torch

TASKS_DIR = pathlib.Path(__file__).resolve().parent / "tasks"
EXAMPLES = 10
CONTEXT = 32


def load_weights(path):
    """Reads a safetensors file of F32 tensors into a dict of torch tensors."""
    blob = path.read_bytes()
    header_len = struct.unpack_from("<Q", blob)[0]
    header = json.loads(blob[8 : 8 + header_len].decode())
    data = memoryview(blob)[8 + header_len :]
    weights = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"evaluate.py: {name} is {info['dtype']}; this evaluator reads F32")
        lo, hi = info["data_offsets"]
        flat = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32)
        weights[name] = flat.view(*info["shape"]) if info["shape"] else flat
    return weights


class ByteLlama:
    """Llama inference for one sequence: RMSNorm, rotary attention (rotate-half), SwiGLU."""

    def __init__(self, cfg, w):
        self.w = w
        self.layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads", self.heads)
        self.head_dim = cfg["hidden_size"] // self.heads
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)

    def norm(self, x, name):
        var = x.pow(2).mean(dim=-1, keepdim=True)
        return self.w[name] * (x / torch.sqrt(var + self.eps))

    def rotary(self, n):
        freqs = self.theta ** (-torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim)
        angles = torch.arange(n, dtype=torch.float32)[:, None] * freqs[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos(), angles.sin()

    def attend(self, x, i, cos, sin):
        n = x.shape[0]
        p = f"model.layers.{i}.self_attn."
        q = (x @ self.w[p + "q_proj.weight"].t()).view(n, self.heads, self.head_dim).transpose(0, 1)
        k = (x @ self.w[p + "k_proj.weight"].t()).view(n, self.kv_heads, self.head_dim).transpose(0, 1)
        v = (x @ self.w[p + "v_proj.weight"].t()).view(n, self.kv_heads, self.head_dim).transpose(0, 1)

        def rot(t):
            a, b = t.chunk(2, dim=-1)
            return t * cos + torch.cat((-b, a), dim=-1) * sin

        q, k = rot(q), rot(k)
        rep = self.heads // self.kv_heads
        k, v = k.repeat_interleave(rep, dim=0), v.repeat_interleave(rep, dim=0)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(self.head_dim)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(0, 1).reshape(n, -1) @ self.w[p + "o_proj.weight"].t()

    def next_byte(self, ids):
        x = self.w["model.embed_tokens.weight"][torch.tensor(ids)]
        cos, sin = self.rotary(len(ids))
        for i in range(self.layers):
            p = f"model.layers.{i}."
            x = x + self.attend(self.norm(x, p + "input_layernorm.weight"), i, cos, sin)
            h = self.norm(x, p + "post_attention_layernorm.weight")
            gate = torch.nn.functional.silu(h @ self.w[p + "mlp.gate_proj.weight"].t())
            up = h @ self.w[p + "mlp.up_proj.weight"].t()
            x = x + (gate * up) @ self.w[p + "mlp.down_proj.weight"].t()
        last = self.norm(x[-1:], "model.norm.weight")
        head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])
        return int((last @ head.t()).argmax())


def main():
    torch.set_num_threads(1)
    model_dir = pathlib.Path(os.environ["REPROBOX_MODEL"])
    scores_path = pathlib.Path(os.environ["REPROBOX_SCORES"])
    tasks = [t for t in os.environ.get("REPROBOX_TASKS", "").split(",") if t]
    limit = EXAMPLES
    if os.environ.get("REPROBOX_DRY_RUN") == "1" and os.environ.get("REPROBOX_DRY_RUN_EXAMPLES"):
        limit = min(limit, int(os.environ["REPROBOX_DRY_RUN_EXAMPLES"]))
    cfg = json.loads((model_dir / "config.json").read_text())
    model = ByteLlama(cfg, load_weights(model_dir / "model.safetensors"))
    results = {}
    with torch.no_grad():
        for task in tasks:
            text = (TASKS_DIR / f"{task}.txt").read_bytes().strip()
            step = (len(text) - CONTEXT) // EXAMPLES
            positions = [CONTEXT + j * step for j in range(EXAMPLES)][:limit]
            examples = [
                1 if model.next_byte(list(text[p - CONTEXT : p])) == text[p] else 0 for p in positions
            ]
            results[task] = {"score": sum(examples) / len(examples), "examples": examples}
            print(f"evaluate.py: {task}: {sum(examples)}/{len(examples)}", flush=True)
    tmp = scores_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"tasks": results}, indent=1) + "\n")
    tmp.replace(scores_path)
    print(f"evaluate.py: wrote {scores_path}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as e:
        sys.exit(f"evaluate.py: {e}")
