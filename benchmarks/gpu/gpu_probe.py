"""GPU probe (benchmarks/gpu/gpu_run.sh runs it on the device machine, paths under .devcarry/): where the
functional backend's meta-step time goes. Times it alone, times the forward alone, profiles one step
(CPU and CUDA time per op), and tries to capture the step in a CUDA graph."""
print("deterministic algorithms:", __import__("torch").are_deterministic_algorithms_enabled())
import sys, time, traceback
from pathlib import Path
import numpy as np, torch
from metarec.meta.learners import MetaConfig, make_learner
from metarec.meta.tasks import sample_tasks

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/, for meta_speed
from meta_speed import speed_problem  # noqa: E402  (the same data, features and model as meta_speed.py)

dev = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cuda")
sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
_, _, side, md, text, model = speed_problem(".devcarry/ml-100k", dev, ".devcarry/ml100k_vectors.npz")
lrn = make_learner(model, MetaConfig(inner_steps=5, backend="functional"), text)
for T in (32, 256):
    batch = sample_tasks(md, model.cfg, np.random.default_rng(0), n_tasks=T, k=5).to(device=dev)
    print(f"T={T} inner items {tuple(batch.inner.items.shape)} outer items {tuple(batch.outer.items.shape)}")
    ts = []
    for r in range(6):
        model.zero_grad(set_to_none=True); sync(); t0 = time.perf_counter()
        lrn.meta_loss(batch).backward(); sync()
        if r >= 2: ts.append(time.perf_counter() - t0)
    print(f"T={T} functional alone median {np.median(ts)*1e3:.2f} ms  min {min(ts)*1e3:.2f}")
    # forward only (no backward)
    ts = []
    for r in range(6):
        sync(); t0 = time.perf_counter(); l = lrn.meta_loss(batch); sync(); ts.append(time.perf_counter() - t0)
    print(f"T={T} forward (incl. inner loop) median {np.median(ts[2:])*1e3:.2f} ms")
    if T in (32, 256):
        from torch.profiler import profile, ProfilerActivity
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with profile(activities=acts) as p:
            model.zero_grad(set_to_none=True); lrn.meta_loss(batch).backward(); sync()
        ka = p.key_averages()
        key = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
        print(ka.table(sort_by=key, row_limit=14, max_name_column_width=60))
        n_k = sum(e.count for e in ka if getattr(e, "device_type", None) is not None and str(e.device_type).endswith("CUDA"))
        dev_total = sum(e.self_device_time_total for e in ka
                        if getattr(e, "device_type", None) is not None and str(e.device_type).endswith("CUDA"))
        print(f"T={T} device kernels {n_k}, kernel time {dev_total/1e3:.2f} ms")
    if dev.type == "cuda":
        # whole-step capture as in PyTorch's CUDA graph notes: no live autograd graph from earlier
        # steps (the forward-only loss `l` above kept one, which broke the first attempt with an
        # AccumulateGrad stream mismatch), grads set to None, warm-up on a side stream
        del l
        try:
            model.zero_grad(set_to_none=True)
            s = torch.cuda.Stream(); s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    model.zero_grad(set_to_none=True)
                    lrn.meta_loss(batch).backward()
            torch.cuda.current_stream().wait_stream(s)
            model.zero_grad(set_to_none=True)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                out = lrn.meta_loss(batch); out.backward()
            g.replay(); sync()
            graph_loss, graph_grads = float(out), [q.grad.clone() for q in model.parameters() if q.grad is not None]
            for q in model.parameters():
                q.grad = None
            eager = lrn.meta_loss(batch); eager.backward(); sync()
            diff = max(float((a - q.grad).abs().max()) for a, q in zip(graph_grads, [q for q in model.parameters() if q.grad is not None]))
            print(f"T={T} graph loss {graph_loss:.6f} eager {float(eager):.6f}, max grad difference {diff:.2e}")
            del eager
            ts = []
            for r in range(10):
                sync(); t0 = time.perf_counter(); g.replay(); sync()
                if r >= 2: ts.append(time.perf_counter() - t0)
            print(f"T={T} CUDA graph replay median {np.median(ts)*1e3:.2f} ms")
            del g, out
        except Exception:
            traceback.print_exc(limit=4)
