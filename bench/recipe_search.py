"""Train candidate recipes one after the other and append each one's geometry to a JSON-lines file.

    python bench/recipe_search.py nbs/data/recipe_search.jsonl \
        '[{"steps": 1200, "batch_size": 170, "views_per_anchor": 8, "view_mix": "paired", "pair_weights": "typed", "lr": 0.016}]'

Each candidate is a dict of `TrainConfig` settings (float32 and seed 0 unless given). A row holds the settings, the
training time (on the machine as it was: compare recipes by `bench/train_speed.py --search`, measured side by
side), the final loss (mean of the last 50 steps) and the analysis protocol's five headline numbers (500
held-out blobs, mean of three evaluation seeds). The rows of `nbs/data/recipe_search.jsonl` were made this way
and are the search table of `nbs/04_training.ipynb`.
"""
import argparse, json, time
from softfactor.training import TrainConfig, train, GeometryCurve
from softfactor.protocol import evaluate_encoder

KEYS = GeometryCurve.KEYS  # the protocol's five headline numbers

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('out', help='JSON-lines file to append to')
    p.add_argument('candidates', help='a JSON list of dicts of TrainConfig settings')
    a = p.parse_args()
    try: cands = json.loads(a.candidates)
    except json.JSONDecodeError as e: p.error(f'candidates: not JSON ({e})')
    if not isinstance(cands, list) or not all(isinstance(c, dict) for c in cands): p.error('candidates: must be a JSON list of dicts')
    try: cfgs = [TrainConfig(**{'precision': 'float32', 'seed': 0, **c}) for c in cands]  # every candidate checked before any trains
    except (TypeError, ValueError) as e: p.error(f'candidates: {e}')
    for c, cfg in zip(cands, cfgs):
        t0 = time.perf_counter()
        h = train(cfg, progress=False)
        wall = time.perf_counter() - t0
        m = evaluate_encoder(h.encoder)
        row = dict(cfg={'precision': 'float32', 'seed': 0, **c}, wall_s=wall, train_s=h['time'][-1],
                   loss=sum(h['loss'][-50:]) / len(h['loss'][-50:]), **{k: m[k] for k in KEYS})
        print(json.dumps(row), flush=True)
        with open(a.out, 'a') as f: f.write(json.dumps(row) + '\n')

if __name__ == '__main__': main()
