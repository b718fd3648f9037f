#!/usr/bin/env python3
"""Checks that PEFT loads a LoRA adapter (one our engine wrote) and gives the logits our engine gave.

    peft_check.py --model HF_DIR --adapter ADAPTER_DIR --tokens 1,2,3 --expect-logits FILE.npy [--tolerance 1e-4]
    peft_check.py --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --adapter ADAPTER_DIR --tokens ... --expect-logits ...

Loads the base model (a Hugging Face directory, or a GGUF file through transformers' GGUF loading,
dequantized to float32), attaches the adapter with `PeftModel.from_pretrained`, runs the tokens as
one sequence (batch 1, positions 0…T−1, causal, no padding) in float32, and compares the logits with
FILE.npy: float32 (or float64) of shape [T, V] (a leading batch axis of 1 is accepted). Prints the
largest absolute difference (and where), and exits 0 when it is at most the tolerance, 1 when
above, 2 on a shape mismatch or a load error. `--save-logits OUT.npy` writes PEFT's logits [T, V].

Needs torch, transformers, peft, numpy (and gguf for --gguf); see Tests/ModelTests/Fixtures/LoRA/README.md.
"""
import argparse
import os
import sys

import numpy as np


def parse_tokens(text):
    try:
        tokens = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tokens wants comma-separated integers, got '{text}'")
    if not tokens:
        raise argparse.ArgumentTypeError("--tokens is empty")
    return tokens


def check_tensors_loaded(model, adapter_dir):
    """Every tensor of adapter_model.safetensors must sit, with its value, in the model, and every LoRA
    tensor of the model must come from the file. Returns the problems found."""
    import torch
    from safetensors.torch import load_file

    path = os.path.join(adapter_dir, "adapter_model.safetensors")
    if not os.path.exists(path):
        return [f"{path} is missing"]
    stored = load_file(path)
    adapter = model.active_adapter
    in_model = {}
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            # PEFT's in-memory name has the adapter's name before '.weight': …q_proj.lora_A.default.weight.
            in_model[name.replace(f".{adapter}.", ".")] = parameter
    problems = []
    for name, tensor in stored.items():
        if name not in in_model:
            problems.append(f"the file's tensor '{name}' {tuple(tensor.shape)} has no place in the model")
        elif tuple(tensor.shape) != tuple(in_model[name].shape):
            problems.append(f"'{name}': the file has {tuple(tensor.shape)}, the model {tuple(in_model[name].shape)}")
        elif not torch.equal(tensor.to(torch.float32), in_model[name].detach().to(torch.float32)):
            problems.append(f"'{name}': the model's value differs from the file's")
    for name in in_model:
        if name not in stored:
            problems.append(f"the model's LoRA tensor '{name}' is not in the file (PEFT left it at its initial value)")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    base = ap.add_mutually_exclusive_group(required=True)
    base.add_argument("--model", help="Hugging Face model directory (config.json + safetensors)")
    base.add_argument("--gguf", help="GGUF file to load the base model from (via transformers, dequantized)")
    ap.add_argument("--adapter", required=True, help="PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
    ap.add_argument("--tokens", required=True, type=parse_tokens, help="comma-separated token ids, e.g. 1,2,3")
    ap.add_argument("--expect-logits", required=True, help=".npy of shape [T, V] written by our engine")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="largest allowed absolute difference (default 1e-4)")
    ap.add_argument("--save-logits", help="also write PEFT's logits [T, V] (float32) to this .npy")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    import torch
    import transformers
    from peft import PeftModel

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    expected = np.load(args.expect_logits)
    if expected.ndim == 3 and expected.shape[0] == 1:
        expected = expected[0]
    try:
        if args.gguf:
            path = os.path.abspath(args.gguf)
            base_model = transformers.AutoModelForCausalLM.from_pretrained(
                os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32, attn_implementation="eager")
        else:
            base_model = transformers.AutoModelForCausalLM.from_pretrained(
                args.model, dtype=torch.float32, attn_implementation="eager")
        model = PeftModel.from_pretrained(base_model, args.adapter).to(torch.float32).eval()
    except Exception as error:  # a load failure is the finding: say it plainly
        print(f"peft_check: could not load the base model or the adapter: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    config = model.peft_config[model.active_adapter]
    problems = check_tensors_loaded(model, args.adapter)
    if problems:
        # PEFT only warns about adapter tensors it could not place (leaving B at zero): make it an error.
        for problem in problems[:20]:
            print(f"peft_check: {problem}", file=sys.stderr)
        if len(problems) > 20:
            print(f"peft_check: … and {len(problems) - 20} more", file=sys.stderr)
        return 2
    print(f"adapter: {getattr(config.peft_type, 'value', config.peft_type)} r={config.r} lora_alpha={config.lora_alpha} "
          f"target_modules={sorted(config.target_modules) if not isinstance(config.target_modules, str) else config.target_modules} "
          f"use_rslora={config.use_rslora} fan_in_fan_out={config.fan_in_fan_out}")
    lora_tensors = sum(1 for name, _ in model.named_parameters() if "lora_" in name)
    print(f"LoRA tensors attached: {lora_tensors}")

    ids = torch.tensor([args.tokens], dtype=torch.long)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits[0].float().numpy()
    if args.save_logits:
        np.save(args.save_logits, logits)
    if expected.shape != logits.shape:
        print(f"shape mismatch: expected logits {expected.shape}, PEFT gives {logits.shape} "
              f"({len(args.tokens)} tokens, vocabulary {logits.shape[-1]})", file=sys.stderr)
        return 2
    diff = np.abs(logits.astype(np.float64) - expected.astype(np.float64))
    worst = float(diff.max()) if np.isfinite(diff).all() else float("inf")
    t, v = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(diff), diff, np.inf))), diff.shape)
    same_argmax = int((logits.argmax(-1) == expected.argmax(-1)).sum())
    print(f"tokens {len(args.tokens)}, vocabulary {logits.shape[-1]}; max |logits - expected| = {worst:.3e} "
          f"at position {t}, token {v} (PEFT {logits[t, v]:.6f}, expected {expected[t, v]:.6f}); "
          f"mean {float(diff.mean()):.3e}; argmax agrees at {same_argmax}/{len(args.tokens)} positions")
    if worst > args.tolerance:
        print(f"FAIL: {worst:.3e} > tolerance {args.tolerance:g}")
        return 1
    print(f"OK: within tolerance {args.tolerance:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
