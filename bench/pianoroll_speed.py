"""Piano-roll data path: labelled triplets per second from `PianoRollSource.triplets`, next to `blob_triplet_batch`.

    python bench/pianoroll_speed.py [--data chorales] [--patch 16 16] [--batch-size 1024] [--batches 8] [--repeats 5]

Both generators draw the same kind of batch (anchor, two crops, labels) with tensor ops on one device. They
are timed alternately in one process and the best of `--repeats` rounds is kept for each, so the printed
ratio is robust to other load on the machine; absolute rates are not. Loading the data (from the cache
after the first time) is timed apart and not counted.
"""
import argparse, os, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # waiting OpenMP threads sleep instead of spinning on a shared machine
import torch
from softfactor.blobs import blob_triplet_batch
from softfactor.pianoroll import PianoRollSource

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="chorales", help="corpus name or folder of MIDI files")
    p.add_argument("--patch", type=int, nargs=2, default=(16, 16), metavar=("PITCHES", "FRAMES"))
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=8, help="batches per timed round")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per generator (best is kept)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    src = PianoRollSource(a.data, patch=tuple(a.patch))
    load_s = time.perf_counter() - t0
    sz = a.patch[0] if a.patch[0] == a.patch[1] else 16
    g = torch.Generator(device=a.device).manual_seed(0)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    gens = {f"blob_triplet_batch (sz {sz})": lambda: blob_triplet_batch(a.batch_size, sz, generator=g),
            f"PianoRollSource.triplets ({a.patch[0]}x{a.patch[1]})": lambda: src.triplets(a.batch_size, g)}
    for f in gens.values(): f(); sync()  # warm-up (copies the rolls to the device once)
    best = {k: float("inf") for k in gens}
    for _ in range(a.repeats):
        for k, f in gens.items():
            t0 = time.perf_counter()
            for _ in range(a.batches): f()
            sync()
            best[k] = min(best[k], time.perf_counter() - t0)
    n = a.batch_size * a.batches
    rates = {k: n / v for k, v in best.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}, batch {a.batch_size}, {n} triplets per round")
    print(f"data: {src!r}, loaded in {load_s:.2f} s")
    for k, r in rates.items(): print(f"{k:42s} {r:12,.0f} triplets/s")
    blob, roll = rates.values()
    print(f"ratio piano roll / blobs: {roll / blob:.2f}")

if __name__ == "__main__": main()
