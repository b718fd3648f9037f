#!/usr/bin/env python3
"""Makes the PyTorch + PEFT reference fixtures for LoRA in Tests/ModelTests/Fixtures/LoRA.

For each family (llama, qwen2, qwen3, gemma3) it builds a tiny random float32 model with a fixed
seed, attaches a PEFT LoRA (r 4, alpha 8, all seven projections) whose A and B are set to seeded
random values, and records in float64 the logits with and without the adapter, the logits of the
merged model, a next-token cross-entropy loss and its gradient with respect to every LoRA tensor.
The README.md it writes beside the families says what each file and tensor holds.

    /work/.venv-peft/bin/python scripts/lora/make_peft_fixtures.py [--out DIR] [--families llama,qwen3]

Needs torch, transformers, peft, safetensors and numpy (see the README for the exact versions used).
The output is deterministic: running it again rewrites the same bytes (for the same versions).
"""
import argparse
import copy
import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers
import peft
import safetensors
from safetensors.torch import save_file, load_file
from peft import LoraConfig, PeftModel, get_peft_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "Tests", "ModelTests", "Fixtures", "LoRA")

VOCAB, HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, MAX_POS, THETA = 96, 32, 48, 4, 2, 64, 10000.0
BATCH, LENGTH = 2, 10
RANK, ALPHA = 4, 8
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Positions (batch, time) whose target is ignored (-1): the same for every family.
IGNORED = [(0, 0), (0, 1), (1, 4), (1, 9)]
SEEDS = {"llama": 101, "qwen2": 202, "qwen3": 303, "gemma3": 404}


def make_config(family):
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE, num_attention_heads=HEADS,
                  num_key_value_heads=KV_HEADS, max_position_embeddings=MAX_POS, rms_norm_eps=1e-6)
    if family == "llama":
        # Tied like SmolLM2-135M (the real model LoRA is trained on).
        return transformers.LlamaConfig(num_hidden_layers=2, rope_theta=THETA, tie_word_embeddings=True,
                                        hidden_act="silu", **common), transformers.LlamaForCausalLM
    if family == "qwen2":
        # Qwen2 always has q/k/v biases (no o/MLP biases); untied head.
        return transformers.Qwen2Config(num_hidden_layers=2, rope_theta=THETA, tie_word_embeddings=False,
                                        use_sliding_window=False, hidden_act="silu", **common), transformers.Qwen2ForCausalLM
    if family == "qwen3":
        # QK-norm; head_dim 16 stated (≠ hidden/heads = 8), so q_proj is 32 -> 64 and o_proj 64 -> 32; tied.
        return transformers.Qwen3Config(num_hidden_layers=2, head_dim=16, rope_theta=THETA, tie_word_embeddings=True,
                                        attention_bias=False, use_sliding_window=False, hidden_act="silu",
                                        **common), transformers.Qwen3ForCausalLM
    if family == "gemma3":
        # Sliding layers 0 and 2 (window 4: a query sees itself and the 3 tokens before), full layer 1.
        # RoPE base 10,000 on sliding layers, 1,000,000 on the full one (as the real Gemma 3);
        # query_pre_attn_scalar 24 ≠ head_dim 16, so the score scale is 24^-½, not 16^-½.
        return transformers.Gemma3TextConfig(
            num_hidden_layers=3, head_dim=16, sliding_window=4,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            query_pre_attn_scalar=24, final_logit_softcapping=None, attn_logit_softcapping=None,
            hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
            rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": THETA},
                             "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0}},
            **common), transformers.Gemma3ForCausalLM
    raise ValueError(family)


def randomize_base(model, family, gen):
    """Seeded weights big enough that every part of the model matters (transformers' 0.02 init is nearly silent)."""
    gemma = family == "gemma3"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                # Llama/Qwen RMSNorm multiplies by w (around 1); Gemma's by 1 + w (w around 0).
                base = 0.0 if gemma else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            else:
                raise RuntimeError(f"unexpected parameter {name} {tuple(p.shape)}")


# transformers computes RMSNorm, the RoPE angles and the attention softmax in float32 even in a
# float64 model (and Gemma's embedding scale √d is a float32 buffer), which leaves ~1e-6 of float32
# rounding in a "float64" run. These replacements compute them in the model's dtype (identical maths;
# in float32 they give the same results as transformers'), so the reference is float64 throughout.
def _rms_norm_forward(self, x):
    eps = getattr(self, "variance_epsilon", getattr(self, "eps", None))
    normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    if isinstance(self, transformers.models.gemma3.modeling_gemma3.Gemma3RMSNorm):
        return normed * (1.0 + self.weight)
    return self.weight * normed


def _rope_forward(self, x, position_ids, layer_type=None):
    inv_freq = getattr(self, f"{layer_type}_inv_freq") if layer_type else self.inv_freq
    scaling = getattr(self, f"{layer_type}_attention_scaling") if layer_type else self.attention_scaling
    freqs = position_ids[..., None].to(inv_freq.dtype) * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * scaling).to(x.dtype), (emb.sin() * scaling).to(x.dtype)


def _eager_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, softcap=None, **kwargs):
    assert softcap is None and dropout == 0.0
    groups = module.num_key_value_groups
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    weights = torch.matmul(query, key.transpose(2, 3)) * (module.head_dim ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def patch_transformers_for_float64():
    from transformers.models.llama import modeling_llama
    from transformers.models.qwen2 import modeling_qwen2
    from transformers.models.qwen3 import modeling_qwen3
    from transformers.models.gemma3 import modeling_gemma3
    for mod, prefix in [(modeling_llama, "Llama"), (modeling_qwen2, "Qwen2"), (modeling_qwen3, "Qwen3"),
                        (modeling_gemma3, "Gemma3")]:
        getattr(mod, prefix + "RMSNorm").forward = _rms_norm_forward
        getattr(mod, prefix + "RotaryEmbedding").forward = _rope_forward
        mod.eager_attention_forward = _eager_attention


def exact_buffers(model):
    """After .double(): recompute in float64 the buffers transformers made in float32 (RoPE inverse
    frequencies, Gemma's embedding scale)."""
    config = model.config
    dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    for name, module in model.named_modules():
        if name.endswith("rotary_emb"):
            params = config.rope_parameters
            kinds = [(t, params[t]) for t in sorted(set(config.layer_types))] if "full_attention" in params else [(None, params)]
            for layer_type, p in kinds:
                assert p["rope_type"] == "default", p
                inv = 1.0 / (p["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
                setattr(module, f"{layer_type}_inv_freq" if layer_type else "inv_freq", inv)
        if hasattr(module, "embed_scale"):
            module.embed_scale = torch.tensor(config.hidden_size ** 0.5, dtype=torch.float64)


def lora_config():
    return LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, bias="none",
                      task_type="CAUSAL_LM")


def saved_name(param_name):
    """PEFT's in-memory name (…q_proj.lora_A.default.weight) -> its name in adapter_model.safetensors."""
    return param_name.replace(".default.", ".")


def loss_of(logits, targets):
    """Mean over the positions with targets[b,t] >= 0 of -log softmax(logits[b,t])[targets[b,t]]; no shift."""
    mask = targets >= 0
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets.clamp(min=0).long().unsqueeze(-1)).squeeze(-1)
    return -(picked * mask).sum() / mask.sum()


def batch(gen):
    seq = torch.randint(0, VOCAB, (BATCH, LENGTH + 1), generator=gen)
    inputs = seq[:, :LENGTH].to(torch.int32).contiguous()
    targets = seq[:, 1:].to(torch.int32).clone()
    for b, t in IGNORED:
        targets[b, t] = -1
    return inputs, targets


def forward(model, inputs):
    out = model(input_ids=inputs.long(), attention_mask=torch.ones_like(inputs, dtype=torch.long), use_cache=False)
    return out.logits


def make_family(family, out_dir):
    torch.manual_seed(SEEDS[family])
    gen = torch.Generator().manual_seed(SEEDS[family])
    config, cls = make_config(family)
    config._attn_implementation = "eager"
    model = cls(config).to(torch.float32).eval()
    randomize_base(model, family, gen)

    fam_dir = os.path.join(out_dir, family)
    model_dir, adapter_dir = os.path.join(fam_dir, "model"), os.path.join(fam_dir, "adapter")
    for d in (model_dir, adapter_dir):
        shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(model_dir, safe_serialization=True)

    peft_model = get_peft_model(model, lora_config())
    lora_names = []
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
                lora_names.append(name)
            elif "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                lora_names.append(name)
    peft_model.save_pretrained(adapter_dir)
    os.remove(os.path.join(adapter_dir, "README.md"))  # PEFT's empty model card
    # PEFT keeps target_modules as a set and writes it in hash order; sort it so reruns give the same bytes.
    config_path = os.path.join(adapter_dir, "adapter_config.json")
    with open(config_path) as f:
        adapter_config = json.load(f)
    adapter_config["target_modules"] = sorted(adapter_config["target_modules"])
    with open(config_path, "w") as f:
        json.dump(adapter_config, f, indent=2, sort_keys=True)
        f.write("\n")
    saved = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    assert sorted(saved) == sorted(saved_name(n) for n in lora_names), (sorted(saved)[:4], lora_names[:4])

    inputs, targets = batch(gen)

    # Everything below in float64, from the float32 values written above.
    peft_model = peft_model.double().eval()
    exact_buffers(peft_model)
    for name, p in peft_model.named_parameters():
        p.requires_grad_("lora_" in name)
    logits = forward(peft_model, inputs)
    loss = loss_of(logits, targets)
    loss.backward()
    grads = {saved_name(n): p.grad.detach().clone() for n, p in peft_model.named_parameters() if "lora_" in n}
    with torch.no_grad():
        with peft_model.disable_adapter():
            base_logits = forward(peft_model, inputs)
        merged = copy.deepcopy(peft_model).merge_and_unload()
        merged_logits = forward(merged, inputs)

    # Self-checks: the files on disk reproduce the logits; merging changes nothing; the adapter matters.
    with torch.no_grad():
        reloaded_base = cls.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float64).eval()
        reloaded = PeftModel.from_pretrained(reloaded_base, adapter_dir).double().eval()
        exact_buffers(reloaded)
        reloaded_logits = forward(reloaded, inputs)
    checks = {
        "reloaded-vs-logits": (reloaded_logits - logits).abs().max().item(),
        "merged-vs-logits": (merged_logits - logits).abs().max().item(),
    }
    for what, diff in checks.items():
        assert diff < 1e-9, f"{family}: {what} differ by {diff}"
    adapter_effect = (logits - base_logits).abs().max().item()
    assert adapter_effect > 0.1, f"{family}: the adapter barely changes the logits ({adapter_effect})"

    tensors = {
        "inputs": inputs,
        "targets": targets,
        "logits": logits.detach().float(),
        "base_logits": base_logits.float(),
        "merged_logits": merged_logits.float(),
        "loss": loss.detach().reshape(1).double(),
    }
    for name, g in grads.items():
        tensors["grad." + name] = g.float()
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(fam_dir, "reference.safetensors"),
              metadata={"generator": f"scripts/lora/make_peft_fixtures.py ({family})"})
    grad_norm = sum(float((g ** 2).sum()) for g in grads.values()) ** 0.5
    print(f"{family}: loss {loss.item():.6f}, |adapter effect| {adapter_effect:.3f}, grad norm {grad_norm:.4f}, "
          f"{len(grads)} LoRA tensors, checks " + ", ".join(f"{k} {v:.1e}" for k, v in checks.items()))
    return {"loss": loss.item(), "lora_tensors": len(grads)}


README = """# LoRA reference fixtures (PyTorch + PEFT)

Made by `scripts/lora/make_peft_fixtures.py` (do not edit by hand; regenerate instead):

```sh
python3 -m venv /work/.venv-peft        # once; any venv with the packages below
/work/.venv-peft/bin/pip install torch transformers peft safetensors numpy gguf
/work/.venv-peft/bin/python scripts/lora/make_peft_fixtures.py
```

Versions used: torch {torch} (the PyPI wheel, run on the CPU), transformers {transformers}, peft {peft}, safetensors {safetensors},
numpy {numpy}, Python {python}. The script is deterministic (fixed seeds, sorted JSON), so rerunning it
with the same versions rewrites the same bytes; it checks that reloading the saved model and adapter
from disk reproduces the logits, that the merged model's logits equal the adapter's, and that the
adapter changes the logits by more than 0.1. The gradients were also checked against central finite
differences in float64 (agreement to ~1e-8).

Float64 throughout: transformers computes RMSNorm, the RoPE angles and the attention softmax in
float32 even in a float64 model, and keeps Gemma's embedding scale √32 as a float32 number. The
script replaces those few functions with the same maths in the model's dtype (and recomputes the
RoPE inverse frequencies and √32 in float64), so the references carry no float32 rounding.
Unpatched transformers gives logits within ~2e-6 of these in float64 and ~4e-6 in float32.

## Families

Every model: vocabulary 96, hidden size 32, intermediate size 48, 4 query heads, 2 key/value heads,
maximum positions 64, RMSNorm epsilon 1e-6, no padding, causal attention, eager attention in
transformers. Weights are random with a fixed seed per family: linear weights normal with std
1/√fan_in, embeddings std 0.3, biases std 0.1, norm weights 1 + 0.2·N(0,1) (Gemma: 0.2·N(0,1),
since Gemma's RMSNorm multiplies by 1 + w). Saved in float32 with `save_pretrained(..., safe_serialization=True)`.

| folder | class | layers | specifics |
| --- | --- | --- | --- |
| `llama/` | `LlamaForCausalLM` | 2 | RoPE 10,000, head 8, tied head (like SmolLM2) |
| `qwen2/` | `Qwen2ForCausalLM` | 2 | RoPE 10,000, head 8, q/k/v biases, untied head (`lm_head.weight` present) |
| `qwen3/` | `Qwen3ForCausalLM` | 2 | RoPE 10,000, QK-norm, `head_dim` 16 stated (≠ 32/4), so q_proj 32→64, k/v_proj 32→32, o_proj 64→32; tied |
| `gemma3/` | `Gemma3ForCausalLM` (`gemma3_text`) | 3 | `layer_types` sliding, full, sliding; `sliding_window` 4 (query t sees keys t−3…t); RoPE 10,000 on sliding layers and 1,000,000 on the full one (`rope_parameters` per layer type); `head_dim` 16; `query_pre_attn_scalar` 24 (score scale 24^−½); GELU-tanh; embeddings ×√32; QK-norm, pre and post norms; tied; no soft-capping |

Each family folder holds:

- `model/config.json`, `model/model.safetensors` (and transformers' `generation_config.json`): the
  base model, float32 (transformers {transformers} writes RoPE as `rope_parameters`, not a top-level
  `rope_theta`; tied models have no `lm_head.weight`).
- `adapter/adapter_config.json`, `adapter/adapter_model.safetensors`: the PEFT LoRA, `r` 4,
  `lora_alpha` 8 (scale alpha/r = 2), dropout 0, no bias, on q/k/v/o/gate/up/down_proj of every
  layer, float32. Tensor names as PEFT writes them, e.g.
  `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight` ([r, in]) and `…lora_B.weight`
  ([out, r]); the adapted layer computes W x + (alpha/r) · B (A x). A is N(0, 0.2²), B is N(0, 0.1²)
  (seeded; not PEFT's zero init for B, so the adapter matters). `adapter_config.json` is PEFT's own
  but for `target_modules`, which PEFT writes in hash order and the script sorts; PEFT's empty model
  card (`README.md`) is removed. Gemma 3's names are the same as the others' (`Gemma3ForCausalLM`
  has `model.layers.N…`; the multimodal `Gemma3ForConditionalGeneration` would have `model.language_model.layers.N…`).
- `reference.safetensors`, computed in float64 from those float32 values (PEFT model cast with `.double()`):

| tensor | dtype | shape | meaning |
| --- | --- | --- | --- |
| `inputs` | I32 | [2, 10] | token ids fed to the model (batch 2, no padding, positions 0…9) |
| `targets` | I32 | [2, 10] | `targets[b,t]` is the token that should follow `inputs[b,t]` (it is `inputs[b,t+1]` for t < 9; for t = 9 an 11th token drawn with the others); **−1: no loss at that position** (here (0,0), (0,1), (1,4), (1,9)) |
| `logits` | F32 | [2, 10, 96] | logits of base + adapter at every position |
| `base_logits` | F32 | [2, 10, 96] | logits with the adapter disabled (`with model.disable_adapter():`) |
| `merged_logits` | F32 | [2, 10, 96] | logits of `merge_and_unload()` (equal to `logits` to ~1e-15 in float64) |
| `loss` | F64 | [1] | mean over the 16 positions with `targets >= 0` of cross-entropy(`logits[b,t]`, `targets[b,t]`); no shifting inside transformers (labels were not passed to the model) |
| `grad.<name>` | F32 | as the tensor | d `loss` / d (adapter tensor `<name>`), `<name>` exactly as in `adapter_model.safetensors`, e.g. `grad.base_model.model.model.layers.1.mlp.down_proj.lora_B.weight` |

The gradients are with respect to the adapter tensors as stored (A and B), the scale alpha/r included
in the forward; the base weights are frozen.

## Related scripts

- `scripts/lora/peft_check.py`: loads a base model (directory or GGUF) and an adapter with PEFT, runs
  given tokens and compares the logits with a `.npy` [T, V] our engine wrote (exit 1 above the
  tolerance, 2 when PEFT cannot place every adapter tensor).
- `scripts/lora/peft_train_bench.py`: PEFT LoRA training speed and memory on SmolLM2-135M.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--families", default="llama,qwen2,qwen3,gemma3")
    args = ap.parse_args()
    patch_transformers_for_float64()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # bitwise-stable reductions across runs
    os.makedirs(args.out, exist_ok=True)
    for family in args.families.split(","):
        make_family(family, args.out)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(README.format(torch=torch.__version__.split("+")[0], transformers=transformers.__version__,
                              peft=peft.__version__, safetensors=safetensors.__version__, numpy=np.__version__,
                              python=sys.version.split()[0]))


if __name__ == "__main__":
    main()
