"""Quality against training time for three kinds of supervision at the same number of encoded images per step.

    python bench/recipe_curves.py --out nbs/data/recipe_curves.json        # ~25 min on a quiet 2-core CPU

Trains, one after the other with the same seed: the published triplet loss (batch 512, 1,536 images a step),
the dense loss with every pair weighted alike, and the dense loss with typed weights (8 paired views of 170
anchors, 1,530 images a step). `GeometryCurve` measures the analysis protocol every `--every` steps; the time
axis is training time without the measuring. The notebook `04_training` draws the file this writes.
"""
import argparse, json, os, platform, time
from pathlib import Path
import torch
from softfactor.training import TrainConfig, train, GeometryCurve
from softfactor.base import write_json

VARIANTS = {  # name: the settings that differ from TrainConfig()
    'triplets': dict(batch_size=512, lr=8e-3),
    'dense, uniform': dict(batch_size=170, views_per_anchor=8, view_mix='paired', pair_weights='uniform', lr=1.6e-2),
    'dense, typed': dict(batch_size=170, views_per_anchor=8, view_mix='paired', pair_weights='typed', lr=1.6e-2),
}

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='recipe_curves.json', help='JSON file to write (refused if it exists, unless --force)')
    p.add_argument('--steps', type=int, default=1600, help='training steps of each run')
    p.add_argument('--every', type=int, default=200, help='steps between two measurements')
    p.add_argument('--seed', type=int, default=0, help='training seed')
    p.add_argument('--force', action='store_true', help='replace --out')
    a = p.parse_args()
    if a.steps < 1: p.error(f'--steps must be >= 1, got {a.steps}')
    if a.every < 1: p.error(f'--every must be >= 1, got {a.every}')
    if Path(a.out).exists() and not a.force: p.error(f'--out: {a.out} exists: pass --force to replace it')
    runs = {}
    for name, settings in VARIANTS.items():
        cfg = TrainConfig(steps=a.steps, seed=a.seed, precision='float32', **settings)
        t0 = time.perf_counter()
        hist = train(cfg, callbacks=[GeometryCurve(a.every)], progress=False)
        runs[name] = dict(settings=settings, wall_s=time.perf_counter() - t0, curve=hist['geometry'])
        last = hist['geometry'][-1]
        print(f"{name}: {a.steps} steps, {last['train_s']:.0f} s of training; " +
              ', '.join(f"{k} {last[k]:.3f}" for k in GeometryCurve.KEYS), flush=True)
    write_json(dict(steps=a.steps, every=a.every, seed=a.seed, threads=torch.get_num_threads(),
                    machine=f"{platform.machine()}, {os.cpu_count()} cores", runs=runs), a.out)

if __name__ == '__main__': main()
