"""Wall time of each real-music experiment of `softfactor-oplas` at its default size, on one thread.

    python bench/oplas_music_speed.py [--only roll-stems,audio-stems,fifths] [--aisfx] [--encoder RUN]

Each subcommand runs as a user would run it (the installed `softfactor-oplas`, `--threads 1`), into a fresh
temporary `--out`. `audio-stems` runs twice: with an empty feature cache (rendering and features included) and
again with the cache it filled. `roll-stems` loads `--encoder` (default: runs/chorales if it exists; without one
it trains a 300-step encoder first, which the time includes). `--aisfx` adds the pretrained-encoder
configuration of the notebook (wind quartet, 512 + 256 excerpts, log-mel and aisfx), cold cache.
The budget is five minutes per experiment on this 2-core CPU shared with other work; the JSON each run writes
keeps its own timings (`wall_time_s`, per-run train times, `feature_time_s`).
"""
import argparse, json, os, subprocess, tempfile, time
from pathlib import Path

BUDGET_S = 300

def run(args, env):
    "Run one subcommand; (wall seconds, its closing summary lines)."
    t0 = time.perf_counter()
    r = subprocess.run(['softfactor-oplas', *args, '--threads', '1'], capture_output=True, text=True, env=env)
    if r.returncode: raise SystemExit(f"softfactor-oplas {' '.join(args)} failed:\n{r.stderr}")
    out = Path(args[args.index('--out') + 1])
    n = len(json.loads(next(out.glob('*.json')).read_text())['summary'])
    return time.perf_counter() - t0, r.stdout.strip().splitlines()[-n - 1:]

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--only', default='roll-stems,audio-stems,fifths', help='comma-separated subcommands to time')
    p.add_argument('--aisfx', action='store_true', help='also time the aisfx configuration of the notebook (cold cache)')
    p.add_argument('--encoder', default=None, help='run directory of the frozen chorale encoder (default: runs/chorales if present)')
    a = p.parse_args()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only.split(','):
            out = str(Path(tmp, name))
            if name == 'audio-stems':
                cache = str(Path(tmp, 'cache'))
                secs, lines = run([name, '--out', out, '--cache', cache], env)
                rows.append((f"{name} (empty cache)", secs, lines))
                secs, lines = run([name, '--out', out, '--cache', cache, '--force'], env)
                rows.append((f"{name} (features cached)", secs, lines))
            elif name == 'roll-stems':
                enc = a.encoder or ('runs/chorales' if Path('runs/chorales/checkpoint.pt').exists() else None)
                secs, lines = run([name, '--out', out] + (['--encoder', enc] if enc else []), env)
                rows.append((f"{name} ({'encoder ' + enc if enc else 'training a 300-step encoder first'})", secs, lines))
            else:
                secs, lines = run([name, '--out', out], env)
                rows.append((name, secs, lines))
        if a.aisfx:
            secs, lines = run(['audio-stems', '--out', str(Path(tmp, 'aisfx')), '--cache', str(Path(tmp, 'cache_aisfx')),
                               '--assignments', 'winds', '--features', 'logmel,aisfx', '--n-train', '512', '--n-eval', '256'], env)
            rows.append(('audio-stems, aisfx (notebook size, empty cache)', secs, lines))
    width = max(len(r[0]) for r in rows)
    print(f"{'experiment':<{width}}  wall s  within {BUDGET_S} s")
    for label, secs, lines in rows:
        print(f"{label:<{width}}  {secs:6.0f}  {'yes' if secs <= BUDGET_S else 'NO'}")
        for line in lines: print(f"{'':<{width}}    {line}")

if __name__ == '__main__': main()
