"""The key-window cache at scale: files/s, windows/s and peak memory on a folder of generated MIDI files, a resumed build, and shards.

    python bench/keys_cache.py [--files 10000] [--long-files 500] [--check-files 2000] [--json nbs/data/keys_cache_bench.json]

Writes a folder of `--files` small random MIDI files (a few bars of 4/4, one to three tracks of notes drawn
from a random major or minor scale, a key-signature event; a few files deliberately corrupt and a few holding
only drums), then builds the window cache (`softfactor.keys.build_window_cache`) in a fresh process on one
thread and reports its rate and the process's peak resident memory (ru_maxrss), beside the peak of a process
that only imports softfactor and reads one file; the same for `--long-files` longer pieces (64-128 bars,
4-10 tracks, nearer a song of the Lakh set). On another, smaller folder (`--check-files`) it checks
(1) a build stopped after `--stop-after` files (`--stop-after` of the command) and rerun, (2) a build killed
with SIGKILL part-way and rerun, and (3) shards 0/2 and 1/2 built apart (these three in chunks of 64 files),
each against an uninterrupted one-shard build (chunked as the timed build, whose peak memory it also gives):
the rerun does only the files its manifest lacks, and the windows read back are equal.
"""
import argparse, json, os, platform, shutil, signal, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

BUILD = ("import json, sys, torch; torch.set_num_threads(1); from softfactor.keys import build_window_cache as b; "
         "r = b(sys.argv[1], sys.argv[2], sys.argv[3], chunk_files=int(sys.argv[4]), stop_after=None if sys.argv[5] == 'none' else int(sys.argv[5])); "
         "print(json.dumps(r))")
BASELINE = ("import sys, torch; torch.set_num_threads(1); import softfactor.keys; from softfactor.pianoroll import midi_to_piece; "
            "midi_to_piece(sys.argv[1])")
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1', 'PYTHONWARNINGS': 'default'}

def make_folder(root, n, seed, n_bad, n_drums, bars=(4, 8), n_tracks=(1, 3)):
    "n MIDI files under root in 16 sub-folders (as Lakh's 0-f), the first n_bad corrupt and the next n_drums drums only."
    from softfactor.pianoroll import write_midi
    rng = np.random.default_rng(seed)
    major, minor = np.array([0, 2, 4, 5, 7, 9, 11]), np.array([0, 2, 3, 5, 7, 8, 10])
    for i in range(n):
        path = Path(root) / f"{i % 16:x}" / f"{i:06d}.mid"
        if i < n_bad:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b'MThd' + rng.bytes(int(rng.integers(0, 40))) if i % 2 else rng.bytes(200)); continue
        if i < n_bad + n_drums:
            write_midi(path, [('drums', 0, True, [(b / 2, 0.25, 36 + (b % 3)) for b in range(32)])]); continue
        tonic, is_minor = int(rng.integers(12)), bool(rng.integers(2))
        scale = (minor if is_minor else major) + tonic
        n_bars = int(rng.integers(bars[0], bars[1] + 1))
        tracks = []
        for t in range(int(rng.integers(n_tracks[0], n_tracks[1] + 1))):
            k = int(rng.integers(8, 12 * n_bars))
            starts = np.sort(rng.integers(0, 16 * n_bars, k)) / 4
            pitches = 12 * rng.integers(2 + t % 5, 5 + t % 5, k) + rng.choice(scale, k)
            tracks.append((f"track {t}", int(rng.integers(0, 80)), False,
                           [(float(s), float(rng.integers(1, 9)) / 4, int(p)) for s, p in zip(starts, pitches)]))
        sharps = ((tonic + 3 * is_minor) * 7) % 12; sharps = sharps - 12 if sharps > 6 else sharps  # key signature of the key
        write_midi(path, tracks, key=(sharps, int(is_minor)))

def run_measured(code, *args):
    "Run python code in a fresh process and measure it with wait4: (result json, stderr, wall s, CPU s, peak MiB)."
    t0 = time.perf_counter()
    with tempfile.TemporaryFile('w+') as fo, tempfile.TemporaryFile('w+') as fe:
        p = subprocess.Popen([sys.executable, '-c', code, *map(str, args)], stdout=fo, stderr=fe, text=True, env=ENV)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0); fe.seek(0); out, err = fo.read(), fe.read()
    if p.returncode: raise RuntimeError(f"build failed ({p.returncode}): {err.strip().splitlines()[-1] if err.strip() else ''}")
    return (json.loads(out.strip().splitlines()[-1]) if out.strip() else None), err, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024

def manifest_files(out):
    return [json.loads(l)['file'] for d in sorted(Path(out).glob('shard-*')) for l in (d / 'manifest.jsonl').read_text().splitlines() if l.strip()]

def same(a, b):
    import torch
    return bool(torch.equal(a.x, b.x) and (a.key == b.key).all() and (a.written == b.written).all() and (a.piece == b.piece).all() and a.ids == b.ids)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--files', type=int, default=10000, help='files of the timed folder')
    p.add_argument('--check-files', type=int, default=2000, help='files of the folder of the resume and shard checks')
    p.add_argument('--long-files', type=int, default=500, help='files of a folder of longer pieces (64-128 bars, 4-10 tracks), timed too')
    p.add_argument('--bad', type=int, default=10, help='corrupt files in each folder')
    p.add_argument('--drums', type=int, default=5, help='drums-only files in each folder')
    p.add_argument('--chunk-files', type=int, default=256, help='files per chunk of the timed build')
    p.add_argument('--stop-after', type=int, default=700, help='files the stopped build does before it stops')
    p.add_argument('--work', default=None, help='folder for the generated files and caches (default: a temporary folder, removed)')
    p.add_argument('--json', default='nbs/data/keys_cache_bench.json', help='where the numbers are written')
    a = p.parse_args()
    import torch; torch.set_num_threads(1)
    from softfactor.keys import read_window_cache
    work = Path(a.work or tempfile.mkdtemp(prefix='keys-cache-bench-'))
    res = dict(command='python ' + ' '.join([sys.argv[0], *sys.argv[1:]]), python=platform.python_version(), torch=torch.__version__,
               cpu=platform.processor() or platform.machine(), threads=1)
    try:
        big, small = work / 'midi', work / 'midi-check'
        t0 = time.perf_counter(); make_folder(big, a.files, 0, a.bad, a.drums); gen_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in big.rglob('*.mid'))
        print(f"generated {a.files:,} MIDI files ({size / 2**20:.1f} MiB) in {gen_s:.1f} s", flush=True)
        _, _, _, _, base_mib = run_measured(BASELINE, sorted(big.rglob('*.mid'))[-1])
        r, err, wall, cpu, peak = run_measured(BUILD, big, work / 'cache', '0/1', a.chunk_files, 'none')
        warn = [l for l in err.splitlines() if 'skipped' in l]
        res['timed'] = dict(files=a.files, bytes=size, generate_s=gen_s, build_s=r['seconds'], process_wall_s=wall, process_cpu_s=cpu,
                            files_per_s=a.files / r['seconds'], windows=r['windows'], windows_per_s=r['windows'] / r['seconds'],
                            skipped=r['skipped'], chunks=r['chunks'], chunk_files=a.chunk_files, peak_rss_mib=peak, baseline_rss_mib=base_mib,
                            cache_bytes=sum(f.stat().st_size for f in (work / 'cache').rglob('*') if f.is_file()), warning=warn[0][:300] if warn else None)
        print(f"build: {a.files:,} files in {r['seconds']:.1f} s = {a.files / r['seconds']:,.0f} files/s, {r['windows']:,} windows = "
              f"{r['windows'] / r['seconds']:,.0f} windows/s; {r['skipped']} skipped; peak RSS {peak:.0f} MiB (import + one file: {base_mib:.0f} MiB)", flush=True)
        # longer pieces, nearer a song of the Lakh set: 64-128 bars, 4-10 tracks
        make_folder(work / 'midi-long', a.long_files, 2, 0, 0, bars=(64, 128), n_tracks=(4, 10))
        size_long = sum(f.stat().st_size for f in (work / 'midi-long').rglob('*.mid'))
        rl, _, _, _, peak_long = run_measured(BUILD, work / 'midi-long', work / 'cache-long', '0/1', a.chunk_files, 'none')
        res['long'] = dict(files=a.long_files, bytes=size_long, build_s=rl['seconds'], files_per_s=a.long_files / rl['seconds'],
                           windows=rl['windows'], windows_per_s=rl['windows'] / rl['seconds'], peak_rss_mib=peak_long,
                           cache_bytes=sum(f.stat().st_size for f in (work / 'cache-long').rglob('*') if f.is_file()))
        print(f"long pieces: {a.long_files:,} files ({size_long / 2**20:.1f} MiB) in {rl['seconds']:.1f} s = {a.long_files / rl['seconds']:,.0f} files/s, "
              f"{rl['windows']:,} windows = {rl['windows'] / rl['seconds']:,.0f} windows/s; peak RSS {peak_long:.0f} MiB", flush=True)
        # the checks, on a smaller folder
        make_folder(small, a.check_files, 1, a.bad, a.drums)
        ck = lambda name, shard='0/1', stop='none', chunk=64: run_measured(BUILD, small, work / name, shard, chunk, stop)
        whole_r, _, _, _, peak_small = ck('whole', chunk=a.chunk_files)  # chunked as the timed build, so that their peaks compare
        whole = read_window_cache(work / 'whole')
        # (1) stopped after --stop-after files, rerun
        first = ck('stopped', stop=a.stop_after)[0]; again = ck('stopped')[0]
        stopped = dict(first_run_files=first['done_now'], rerun_files=again['done_now'], rerun_done_before=again['done_before'],
                       equal=same(whole, read_window_cache(work / 'stopped')))
        # (2) killed with SIGKILL part-way, rerun
        proc = subprocess.Popen([sys.executable, '-c', BUILD, str(small), str(work / 'killed'), '0/1', '64', 'none'],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        man = work / 'killed' / 'shard-0000-of-0001' / 'manifest.jsonl'
        while proc.poll() is None and (not man.is_file() or man.read_text().count('\n') < a.check_files // 3): time.sleep(0.005)
        proc.send_signal(signal.SIGKILL); proc.wait()
        at_kill = len(manifest_files(work / 'killed'))
        again = ck('killed')[0]
        killed = dict(files_in_manifest_at_kill=at_kill, rerun_files=again['done_now'], equal=same(whole, read_window_cache(work / 'killed')))
        # (3) two shards built apart
        s0, s1 = ck('shards', '0/2')[0], ck('shards', '1/2')[0]
        files0 = {json.loads(l)['file'] for l in (work / 'shards' / 'shard-0000-of-0002' / 'manifest.jsonl').read_text().splitlines()}
        files1 = {json.loads(l)['file'] for l in (work / 'shards' / 'shard-0001-of-0002' / 'manifest.jsonl').read_text().splitlines()}
        shards = dict(shard_files=[s0['files'], s1['files']], overlap=len(files0 & files1), union=len(files0 | files1),
                      equal=same(whole, read_window_cache(work / 'shards')))
        res['check'] = dict(files=a.check_files, windows=whole_r['windows'], peak_rss_mib=peak_small, stop_after=a.stop_after,
                            stopped=stopped, killed=killed, shards=shards)
        print(f"checks on {a.check_files:,} files ({whole_r['windows']:,} windows; peak RSS {peak_small:.0f} MiB):")
        print(f"  stopped after {first['done_now']} files, rerun did {stopped['rerun_files']} (of {a.check_files}); equal to one build: {stopped['equal']}")
        print(f"  killed with {at_kill} files in the manifest, rerun did {killed['rerun_files']}; equal: {killed['equal']}")
        print(f"  shards 0/2 and 1/2: {s0['files']} + {s1['files']} files, overlap {shards['overlap']}, union {shards['union']}; equal: {shards['equal']}")
    finally:
        if a.work is None: shutil.rmtree(work, ignore_errors=True)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1) + '\n')
    print(f"wrote {a.json}")

if __name__ == '__main__': main()
