"""Speed of the section-6 evaluation: `cosine_report` (batched, one forward pass for all 3,500 views of 500 blobs)
against `cosine_report_per_image` (the published way: one image and one forward pass at a time), in one run.

    python bench/analysis_speed.py                 # a run in runs/default if there is one, else an untrained encoder
    python bench/analysis_speed.py --run DIR --n 500 --reps 3

Speed does not depend on the weights, so an untrained ToyEncoder measures the same thing. Both paths compute
the same numbers from the same seeded draws (checked here too).
"""
import argparse, os, time
import torch
from softfactor.protocol import cosine_report
from softfactor.analysis import cosine_report_per_image
from softfactor.encoder import ToyEncoder


def best_of(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--run', default='runs/default', help='training run to load (default: runs/default if present)')
    p.add_argument('--n', type=int, default=500, help='blobs of the protocol (default 500)')
    p.add_argument('--reps', type=int, default=3, help='repetitions of the batched path; the best is kept (default 3)')
    p.add_argument('--threads', type=int, default=0, help='torch threads (default: torch decides)')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    if os.path.exists(a.run):
        from softfactor.training import load_encoder
        enc, what = load_encoder(a.run), a.run
    else: enc, what = ToyEncoder().eval(), 'untrained ToyEncoder'
    cosine_report(enc, n=20)  # warm-up
    batched_s, fast = best_of(lambda: cosine_report(enc, n=a.n), a.reps)
    loop_s, slow = best_of(lambda: cosine_report_per_image(enc, n=a.n), 1)
    worst = max(abs(fast[k] - slow[k]) for k in fast if isinstance(fast[k], float))
    print(f"encoder: {what}; {a.n} blobs = {7 * a.n} images; torch threads {torch.get_num_threads()}")
    print(f"batched (one forward pass):  {batched_s:6.2f} s  (best of {a.reps})")
    print(f"per-image loop:              {loop_s:6.2f} s")
    print(f"ratio: {loop_s / batched_s:.0f}x   (largest difference between the two reports: {worst:.1e})")


if __name__ == '__main__': main()
