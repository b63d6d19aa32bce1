"""Encoder throughput: metarec (length-sorted) vs naive fixed-order batching vs sentence-transformers.

Same model (the bundled all-MiniLM-L6-v2), same batch size, CPU, runs alternated so machine noise
hits every contender alike. Prints a table of texts/second and ratios; writes JSON and Markdown.

    python benchmarks/encode_speed.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from results_io import command_line, write_result


def synthetic_texts(n: int, tokenizer, seed: int = 0, lo: int = 10, hi: int = 300) -> list[str]:
    """n texts whose token counts are spread uniformly over [lo, hi]."""
    rng = np.random.default_rng(seed)
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and len(w) > 2 and not w.startswith("#")]
    vocab = sorted(vocab)[:20000]
    out = []
    for target in rng.integers(lo, hi + 1, size=n):
        words = list(rng.choice(vocab, size=int(target)))
        text = " ".join(words)
        ids = tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        if len(ids) > target:  # trim to the target token count
            text = tokenizer.decode(ids[1:target - 1])
        out.append(text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data/ml-100k")
    ap.add_argument("--n-synthetic", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()

    from sentence_transformers import SentenceTransformer

    from metarec.data import load_dataset
    from metarec.encoders import EncoderConfig, TextEncoder, item_texts
    from metarec.encoders.hf import default_model_path

    torch.manual_seed(0)
    path = default_model_path()
    ours = TextEncoder(EncoderConfig(batch_size=args.batch_size, device="cpu"))
    naive = TextEncoder(EncoderConfig(batch_size=args.batch_size, device="cpu", sort_by_length=False))
    st = SentenceTransformer(path, device="cpu")
    st.max_seq_length = ours.config.max_length
    sets = {
        "ml-100k titles": item_texts(load_dataset("ml-100k", args.data_dir).items),
        "synthetic 10-300 tokens": synthetic_texts(args.n_synthetic, ours.tokenizer),
    }
    runners = {
        "metarec": lambda t: ours.encode(t, show_progress=False),
        "naive": lambda t: naive.encode(t, show_progress=False),
        "sentence-transformers": lambda t: st.encode(t, batch_size=args.batch_size, normalize_embeddings=True),
    }
    for r in runners.values():  # warm-up: first-call allocations and lazy loading are not throughput
        r(sets["ml-100k titles"][:128])
    rows = []
    for name, texts in sets.items():
        times = {k: [] for k in runners}
        for _ in range(args.rounds):
            for k, fn in runners.items():
                t0 = time.perf_counter()
                fn(texts)
                times[k].append(time.perf_counter() - t0)
        best = {k: min(v) for k, v in times.items()}
        tps = {k: len(texts) / best[k] for k in runners}
        rows.append({"set": name, "n_texts": len(texts), **{f"{k}_texts_per_s": round(v, 1) for k, v in tps.items()},
                     "metarec_vs_st": round(tps["metarec"] / tps["sentence-transformers"], 3),
                     "metarec_vs_naive": round(tps["metarec"] / tps["naive"], 3),
                     "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()}})
    command = command_line()
    meta = {"command": command, "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.machine(), "batch_size": args.batch_size,
            "rounds": args.rounds, "note": "best of rounds; runs alternated"}
    header = "| set | texts | metarec texts/s | naive texts/s | sentence-transformers texts/s | metarec/ST | metarec/naive |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['n_texts']} | {r['metarec_texts_per_s']} | {r['naive_texts_per_s']} | "
                     f"{r['sentence-transformers_texts_per_s']} | {r['metarec_vs_st']}x | {r['metarec_vs_naive']}x |")
    table = "\n".join(lines)
    print(table)
    write_result(args.out, "encode_speed", {"meta": meta, "rows": rows}, "Encoder throughput (CPU)", command,
                 f"{table}\n\nPython {meta['python']}, torch {meta['torch']}, {meta['threads']} threads, batch size "
                 f"{args.batch_size}, best of {args.rounds} alternated rounds. Target: metarec >= 1.0x "
                 "sentence-transformers and >= 1.5x naive on the mixed-length set.")


if __name__ == "__main__":
    main()
