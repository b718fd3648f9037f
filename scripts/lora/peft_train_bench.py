#!/usr/bin/env python3
"""The PyTorch + PEFT peer of our LoRA training benchmark: step time, tokens/s and peak memory.

    peft_train_bench.py [--gguf models/SmolLM2-135M-Instruct.Q4_1.gguf] --batch 4 --length 256 --steps 6 --rank 8 --threads 2

Loads the model from the GGUF file through transformers' GGUF loading (dequantized to float32),
attaches a PEFT LoRA (rank r, alpha 2r unless --alpha, dropout 0, on q/k/v/o/gate/up/down_proj),
and trains it with AdamW (lr 1e-4, weight decay 0.01, torch's default) on random token batches
[B, T] drawn from a fixed seed, the loss being transformers' next-token cross-entropy over the
T−1 predicted positions (labels = inputs). The first step is a warm-up and is not timed.
Prints the time of each step, the median step time over the timed steps, tokens/s (B·T per step)
and memory: the peak RSS of the whole process (getrusage ru_maxrss, loading included) and the peak
RSS while training (Linux's VmHWM, reset after loading).

Run it alone on the machine (no build running): with 2 cores, anything else skews the figures.
"""
import argparse
import os
import resource
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_GGUF = os.path.join(REPO, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def status_mib(field):
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux ≥ 4.0: write 5 to /proc/self/clear_refs); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", default=DEFAULT_GGUF, help=f"GGUF model file (default {os.path.relpath(DEFAULT_GGUF)})")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6, help="steps in all, the first one a warm-up (default 6)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default 2·rank)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"], help="transformers' attention (default sdpa)")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error("--steps must be at least 2 (one warm-up, one timed)")

    import torch
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    import transformers
    import peft
    from peft import LoraConfig, get_peft_model

    path = os.path.abspath(args.gguf)
    started = time.perf_counter()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32, attn_implementation=args.attn)
    load_seconds = time.perf_counter() - started
    alpha = args.alpha if args.alpha is not None else 2 * args.rank
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=TARGETS,
                                             bias="none", task_type="CAUSAL_LM"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    n_total = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=args.lr)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(args.seed)

    import gc
    gc.collect()
    rss_after_load = status_mib("VmRSS")
    peak_reset = reset_peak_rss()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}; "
          f"threads {torch.get_num_threads()}; attention {args.attn}")
    print(f"model {os.path.basename(path)} (float32, loaded in {load_seconds:.1f} s): {n_total / 1e6:.1f}M parameters, "
          f"LoRA r={args.rank} alpha={alpha:g} on {','.join(TARGETS)}: {n_trainable:,} trainable")
    print(f"batch {args.batch} × length {args.length} = {args.batch * args.length} tokens per step, "
          f"{args.steps} steps (1 warm-up), AdamW lr {args.lr:g}")

    times, losses = [], []
    for step in range(args.steps):
        ids = torch.randint(0, vocab, (args.batch, args.length), generator=gen)
        t0 = time.perf_counter()
        out = model(input_ids=ids, labels=ids, use_cache=False)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        losses.append(out.loss.item())
        if step > 0:
            times.append(seconds)
        print(f"step {step}{' (warm-up)' if step == 0 else ''}: {seconds:.3f} s, loss {losses[-1]:.4f}", flush=True)

    median = statistics.median(times)
    tokens = args.batch * args.length
    peak_process = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    peak_training = status_mib("VmHWM") if peak_reset else None
    print(f"median step {median:.3f} s (min {min(times):.3f}, max {max(times):.3f}) over {len(times)} timed steps; "
          f"{tokens / median:.1f} tokens/s")
    memory = f"peak RSS {peak_process:.0f} MiB (ru_maxrss, loading included)"
    if rss_after_load is not None:
        memory += f"; RSS after loading {rss_after_load:.0f} MiB"
    if peak_training is not None:
        memory += f"; peak RSS while training {peak_training:.0f} MiB"
    print(memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
