"""Training seeds and controls of 08_pianoroll: every row of nbs/data/pianoroll_runs.jsonl.

    python bench/pianoroll_runs.py [--steps 300] [--seeds 0 1 2] [--conditions ...] [--out nbs/data/pianoroll_runs.jsonl]

For each seed and condition it trains an encoder (or takes its untrained start) and measures it with the
same functions as the notebook, on the held-out part of the condition's own source:

- blobs:              the toy encoder trained on blobs (zero-fill shifts), `TrainConfig` defaults but --steps;
- blobs-untrained:    the same run's initial weights (torch.manual_seed(seed), as `train` draws them), not trained;
- chorales:           trained on chorale windows re-cut from the score (`PianoRollSource`, no padding);
- chorales-untrained: that run's initial weights, measured on the same chorale windows;
- chorales-zerofill:  trained and measured on the same chorale anchors and labels with zero-fill shifts
                      (`ZeroFillRolls`): the one change is what enters at the border.

Measurements: `analyze` (n=500, grid_items=64, no UMAP/t-SNE), `probe_baselines` on the same shift grid,
and `augmentation_disentanglement` (n=500).
Resumable: a (condition, seed, steps) row already in --out is skipped; a killed training run continues from
its checkpoint under --runs. One thread. Seed 0's trained encoders of blobs and chorales are also written
to nbs/data/pianoroll_encoders/ (state dicts, 0.25 MB each) for the notebook's per-encoder figures.
"""
import argparse, json, os, time, warnings
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch
from pathlib import Path
from softfactor.training import TrainConfig, train, make_model
from softfactor.blobs import BlobSource
from softfactor.analysis import analyze, shift_grid, grid_table
from softfactor.pianoroll import (PianoRollSource, ZeroFillRolls, probe_baselines, augmentation_disentanglement)

CONDITIONS = ('chorales-untrained', 'blobs-untrained', 'chorales', 'blobs', 'chorales-zerofill')
KEEP = ('cosine', 'grid_svd', 'probes', 'disentanglement', 'sign_asymmetry', 'direction_consistency')

def _scalars(d):
    "The numbers of a nested dict (lists and arrays dropped)."
    if isinstance(d, dict): return {k: v for k, v in ((k, _scalars(v)) for k, v in d.items()) if v is not None and v != {}}
    return d if isinstance(d, (int, float, str, bool)) else None

def measure(enc, source):
    "Every number of one row: analyze, probe nulls, augmentation test."
    t0 = time.perf_counter()
    res = analyze(enc, source, n=500, grid_items=64, umap=False, tsne=False)
    X, dy, dx, item = grid_table(shift_grid(enc, source, 64, 0)['z'])
    row = {k: _scalars(res[k]) for k in KEEP if k in res}
    row['probe_nulls'] = probe_baselines(X, dy, dx, item, seed=0)
    row['augmentation'] = augmentation_disentanglement(enc, source, n=500)
    row['measure_s'] = time.perf_counter() - t0
    return row

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="training steps of every trained condition (the piano-roll recipe is 2,000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--out", default="nbs/data/pianoroll_runs.jsonl")
    p.add_argument("--runs", default="runs/pianoroll", help="scratch folder of the training checkpoints (git-ignored)")
    p.add_argument("--encoders", default="nbs/data/pianoroll_encoders", help="where seed 0's trained encoders go")
    a = p.parse_args()
    torch.set_num_threads(1)
    out = Path(a.out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line); done.add((r['condition'], r['seed'], r['steps']))
    rolls = PianoRollSource('chorales')
    sources = {'blobs': BlobSource(), 'chorales': rolls, 'zerofill': ZeroFillRolls(rolls)}
    for seed in a.seeds:
        for cond in a.conditions:
            trained = not cond.endswith('-untrained')
            steps = a.steps if trained else 0
            if (cond, seed, steps) in done: continue
            data = cond.split('-')[0]
            source = sources['zerofill' if cond == 'chorales-zerofill' else data]
            cfg = TrainConfig(data=data, steps=max(1, a.steps), threads=1, seed=seed, ckpt_every=100)
            t0, c0 = time.perf_counter(), time.process_time()
            if trained:
                enc = train(cfg, source=source, out=Path(a.runs) / f"{cond}-s{seed}-{a.steps}", resume=True, progress=False, evaluate=False).encoder
            else:
                torch.manual_seed(seed); enc = make_model(cfg, source).eval()  # the weights `train` starts from
            train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
            if trained and seed == 0 and cond in ('blobs', 'chorales'):
                Path(a.encoders).mkdir(parents=True, exist_ok=True)
                torch.save({k: v.detach().cpu() for k, v in enc.state_dict().items()}, Path(a.encoders) / f"{cond}-seed0-{a.steps}.pt")
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                row = dict(condition=cond, data=data, views='zero' if data == 'blobs' or cond.endswith('zerofill') else 'recut',
                           trained=trained, seed=seed, steps=steps, train_s=round(train_s, 1), train_cpu_s=round(train_cpu, 1),
                           **measure(enc, source))
            with out.open('a') as f: f.write(json.dumps(row) + '\n')
            print(f"{cond} seed {seed}: trained {train_s:.0f} s, measured {row['measure_s']:.0f} s, "
                  f"± angle pitch {row['cosine'].get('angle_pitch_deg', float('nan')):.1f}, aug ratio {row['augmentation']['transposition']['median']:.2f}", flush=True)

if __name__ == "__main__": main()
