"""The controls of the real-music OpLaS post, as resumable runs whose rows the notebook reads.

    python bench/oplas_music_controls.py [--only fifths,roll,audio] [--out nbs/data]

Every run appends one JSON row to a file under --out as soon as it ends, and a run whose row is already
there is skipped, so an interrupted command continues where it stopped (delete a file to redo its runs):

- `oplas_music_fifths.jsonl`: the circle-of-fifths experiment (`FifthsConfig()`'s sizes) with the step a
  fifth (four operators × seeds 0–4), a semitone and shuffled rows (the control; FiLMR Givens and the
  plain matrix × seeds 0–2). One row per (step, operator, seed).
- `oplas_music_roll_controls.jsonl`: the piano-roll stems (`RollStemsConfig()`, seeds 0–2) through an
  untrained encoder (the chorale encoder's architecture, random initialisation, seed 0) and through no
  encoder at all (the flattened rolls). One row per (encoder, seed).
- `oplas_music_audio.jsonl`: the audio stems of the wind quartet, 512 training and 256 held-out excerpts,
  log-mel, log-mel without its standard deviation, and mel power, projector seeds 0–2 on one draw of
  excerpts. One row per (feature, seed).

One thread (`torch.set_num_threads(1)`); about 13 CPU-minutes in all on the 2-core machine of the posts.
"""
import argparse, json, time
from dataclasses import asdict
from pathlib import Path
import torch

def _round(x, digits=5):
    "Floats rounded to `digits` significant digits, recursively (keeps the rows small)."
    if isinstance(x, float): return float(f"{x:.{digits}g}")
    if isinstance(x, dict): return {k: _round(v, digits) for k, v in x.items()}
    if isinstance(x, (list, tuple)): return [_round(v, digits) for v in x]
    return x

def _done(path, key_fields):
    if not path.exists(): return set()
    return {tuple(r[k] for k in key_fields) for r in map(json.loads, path.read_text().splitlines()) if r}

def _append(path, row):
    with path.open('a') as f: f.write(json.dumps(_round(row)) + '\n')

def fifths(out, chorales):
    from softfactor.oplas_music import FifthsConfig, fifths_patches, train_fifths
    path, keys = out / 'oplas_music_fifths.jsonl', ('step', 'operator', 'seed')
    done = _done(path, keys)
    plan = [('fifth', op, s) for op in ('givens', 'expm', 'matrix', 'mlp') for s in range(5)]
    plan += [(step, op, s) for step in ('semitone', 'shuffled') for op in ('givens', 'matrix') for s in range(3)]
    patches = fifths_patches(chorales, FifthsConfig())
    for step, op, seed in plan:
        if (step, op, seed) in done: continue
        cfg = FifthsConfig(step=step, operators=(op,), seeds=(seed,))
        r = train_fifths(op, *patches, cfg, seed)
        r.pop('h'); r.pop('T')
        if step != 'fifth': r.pop('history')
        _append(path, {**r, 'config': asdict(cfg)})
        m = r['metrics']
        print(f"fifths {step:>8} {op:>6} seed {seed}: k-step {m['mean_accuracy']:.3f}, closure {m['closure_error']:.3f}"
              + (f", θ {30 * m['theta_init_steps']:.1f}° -> {30 * m['theta_steps']:.1f}°" if 'theta_steps' in m else ''), flush=True)

def roll(out, chorales):
    from softfactor.training import TrainConfig
    from softfactor.oplas_music import ChoraleVoices, RollStemsConfig, FlatRolls, untrained_encoder, run_roll_stems
    path, keys = out / 'oplas_music_roll_controls.jsonl', ('encoder', 'seed')
    done = _done(path, keys)
    voices = ChoraleVoices(chorales)
    info = dict(source='untrained', config=asdict(TrainConfig(data='chorales', device='cpu')))
    encoders = {'untrained': lambda: untrained_encoder(info, 0, chorales), 'raw rolls': FlatRolls}
    for name, make in encoders.items():
        for seed in (0, 1, 2):
            if (name, seed) in done: continue
            cfg = RollStemsConfig(seeds=(seed,))
            res = run_roll_stems(make(), voices, cfg)
            r = res['runs'][0]; r.pop('history')
            _append(path, {'encoder': name, **r, 'config': asdict(cfg)})
            print(f"roll {name:>10} seed {seed}: top-1 {r['raw']['top1']:.3f} -> {r['projected']['top1']:.3f}", flush=True)

def audio(out, chorales):
    from softfactor.oplas_music import ChoraleVoices, AudioStemsConfig, run_audio_stems
    path, keys = out / 'oplas_music_audio.jsonl', ('assignment', 'feature', 'seed')
    done = _done(path, keys)
    voices = ChoraleVoices(chorales)
    features = ('logmel', 'logmel_mean', 'melpower')
    for seed in (0, 1, 2):
        if all(('winds', f, seed) in done for f in features): continue
        cfg = AudioStemsConfig(assignments=('winds',), features=features, n_train=512, n_eval=256, seeds=(seed,))
        res = run_audio_stems(voices, cfg)
        for r in res['runs']:
            r.pop('history')
            _append(path, {**r, 'config': asdict(cfg), 'feature_time_s': res['feature_time_s']['winds']})
            print(f"audio {r['feature']:>11} seed {seed}: top-1 {r['raw']['top1']:.3f} -> {r['projected']['top1']:.3f}", flush=True)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--only', default='fifths,roll,audio', help='comma-separated parts to run')
    p.add_argument('--out', default='nbs/data', help='folder of the JSONL files')
    a = p.parse_args()
    torch.set_num_threads(1)
    from softfactor.training import TrainConfig
    from softfactor.pianoroll import PianoRollSource
    cfg = TrainConfig(data='chorales')
    chorales = PianoRollSource('chorales', patch=(cfg.sz, cfg.frames or cfg.sz), max_shift=cfg.max_shift)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    parts = dict(fifths=fifths, roll=roll, audio=audio)
    for name in a.only.split(','):
        if name not in parts: raise SystemExit(f"--only: unknown part {name!r}; choose from {', '.join(parts)}")
        t0 = time.perf_counter(); parts[name](out, chorales); print(f"{name}: {time.perf_counter() - t0:.0f}s", flush=True)

if __name__ == '__main__': main()
