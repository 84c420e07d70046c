"""Data-path benchmark: labelled triplets per second, per-sample vs batched, measured side by side.

    python bench/data_speed.py [--batch-size 1024] [--batches 8] [--repeats 3]

Per-sample: `BlobShiftDataset` through a `DataLoader` (one Python-level draw per item, default collate).
Batched:    `blob_triplet_batch` (the same distribution with tensor ops).
The two are timed alternately in one process and the best of `--repeats` rounds is kept for each, so the
printed ratio is robust to other load on the machine; absolute rates are not.
"""
import argparse, os, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # waiting OpenMP threads sleep instead of spinning on a shared machine
import torch
from torch.utils.data import DataLoader
from softfactor.blobs import BlobShiftDataset, blob_triplet_batch

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=8, help="batches per timed round")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per path (best is kept)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    n = a.batch_size * a.batches
    loader = DataLoader(BlobShiftDataset(epoch_size=n), batch_size=a.batch_size)
    g = torch.Generator(device=a.device).manual_seed(0)
    blob_triplet_batch(a.batch_size, generator=g)  # warm-up
    best = {"per-sample (DataLoader)": float("inf"), "batched (blob_triplet_batch)": float("inf")}
    for _ in range(a.repeats):
        t0 = time.perf_counter(); [b for b in loader]; best["per-sample (DataLoader)"] = min(best["per-sample (DataLoader)"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _ in range(a.batches): out = blob_triplet_batch(a.batch_size, generator=g)
        if a.device.startswith("cuda"): torch.cuda.synchronize()
        best["batched (blob_triplet_batch)"] = min(best["batched (blob_triplet_batch)"], time.perf_counter() - t0)
    rates = {k: n / v for k, v in best.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch_size}, {n} triplets per round")
    for k, r in rates.items(): print(f"{k:30s} {r:12,.0f} triplets/s")
    ratio = rates["batched (blob_triplet_batch)"] / rates["per-sample (DataLoader)"]
    print(f"ratio batched / per-sample: {ratio:.0f}x")

if __name__ == "__main__": main()
