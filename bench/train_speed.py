"""Training speed: the published recipe vs our default, per step and per run, measured side by side; and, with
`--contention`, how the default recipe's step holds up when other processes compete for the cores.

    python bench/train_speed.py [--reps 7] [--compile] [--search]
    python bench/train_speed.py --contention [--reps 7]
    python bench/train_speed.py --limit [--reps 7]

`--limit` measures how near the machine's limit a step runs: the step's floating-point work (torch's flop
counter, forward + backward), the float32 throughput of a large matrix product and of the encoder's largest
convolution alone (forward + backward, at the step's number of images), all timed in the same run, and each
recipe's share of those peaks; then a `torch.profiler` table of where a default step's time goes.

Every candidate takes one optimizer step in turn, round after round, so that a machine shared with other
jobs slows them all alike; each per-step time is the median over rounds. Candidates:

- published, per-sample data: batch 1,024, `BlobShiftDataset` through a `DataLoader` (one Python call per
  triplet), default memory layout, float32: the published recipe as its code runs it;
- published, batched data: the same step with the batched generator instead;
- ours: `TrainConfig()` as `train` runs it (precision 'auto': bf16 convolutions only where they are fast and
  stable), and the same step forced to bf16 and to float32.

`--contention` times the default recipe's step (float32 and bf16, two threads and one) in three conditions,
one after the other: alone; beside a one-core busy loop (another process spinning); and beside a second
training run (`softfactor-train` with the same recipe, in another process). It prints each step time and its
ratio to the same candidate's time alone. A fair share of a 2-core machine between two equal jobs is 2x.
"""
import argparse, contextlib, os, statistics, subprocess, sys, tempfile, threading, time
from dataclasses import replace
from softfactor.training import TrainConfig, published_config, bf16_fast, use_bf16, Bf16Convs, batch_loss, draw_batch  # first: it sets OMP_WAIT_POLICY before torch loads
import torch
from torch.utils.data import DataLoader
from softfactor.blobs import BlobShiftDataset, BlobSource
from softfactor.encoder import ToyEncoder, layer_costs

def make_step(cfg, per_sample=False, compile=False, bf16=None, marks=False):
    "One optimizer step of `cfg`'s recipe, exactly as `train` takes it (the source's batch, `batch_loss`, Adam)."
    torch.manual_seed(0)
    enc = ToyEncoder(cfg.latent_dim)
    if cfg.channels_last: enc = enc.to(memory_format=torch.channels_last)
    bf16 = use_bf16(cfg, enc, 'cpu') if bf16 is None else bf16
    net = Bf16Convs(enc) if bf16 else enc
    net = torch.compile(net) if compile else net
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    g, source = torch.Generator().manual_seed(0), BlobSource(cfg.sz, cfg.max_shift, cfg.n_blobs, cfg.views)
    batches = iter(DataLoader(BlobShiftDataset(10**9), batch_size=cfg.batch_size)) if per_sample else None
    mark = torch.profiler.record_function if marks else (lambda name: contextlib.nullcontext())
    def step():
        with mark('data'): batch = next(batches) if per_sample else draw_batch(source, cfg, cfg.batch_size, g, 'cpu')
        with mark('forward + loss'): loss, _ = batch_loss(net, cfg, batch, 0)
        with mark('backward'): opt.zero_grad(); loss.backward()
        with mark('optimizer'): opt.step()
    return step

def time_rounds(cands, reps):
    "Median seconds per step of each candidate, one step of each per round."
    times = {k: [] for k in cands}
    for k, (_, step, threads) in cands.items(): torch.set_num_threads(threads); step(); step()  # warm-up
    for _ in range(reps):
        for k, (_, step, threads) in cands.items():
            torch.set_num_threads(threads)
            t0 = time.perf_counter(); step(); times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}

def speed(args):
    pub, ours = published_config(), TrainConfig()
    threads = torch.get_num_threads()
    cands = {'published, per-sample data': (pub, make_step(pub, per_sample=True), threads),
             'published, batched data': (pub, make_step(pub), threads),
             'ours (default)': (ours, make_step(ours), threads)}
    cands['ours, bf16 forced'] = (ours, make_step(ours, bf16=True), threads)
    cands['ours, float32 forced'] = (ours, make_step(ours, bf16=False), threads)
    if args.compile: cands['ours, torch.compile'] = (ours, make_step(ours, compile=True), threads)
    if args.search:
        triplets = replace(ours, views_per_anchor=2, batch_size=512)
        cands['triplets, batch 512'] = (triplets, make_step(triplets), threads)
        for k, bs in ((6, 219), (8, 170), (12, 118)):
            c = replace(ours, views_per_anchor=k, view_mix='paired' if k % 4 == 0 else 'random', batch_size=bs)
            cands[f'{k} views, {bs} anchors'] = (c, make_step(c), threads)
    med = time_rounds(cands, args.reps)
    print(f"torch {torch.__version__}, {threads} threads, median of {args.reps} rounds; "
          f"default precision here: {'bfloat16' if use_bf16(ours, ToyEncoder(), 'cpu') else 'float32'}")
    print(f"{'candidate':30} {'anchors':>8} {'images':>7} {'ms/step':>9} {'steps':>6} {'run (min)':>10}")
    for k, (cfg, _, _) in cands.items():
        images = cfg.batch_size * (cfg.views_per_anchor + 1)
        print(f"{k:30} {cfg.batch_size:>8} {images:>7} {1000 * med[k]:>9.1f} {cfg.steps:>6} {med[k] * cfg.steps / 60:>10.1f}")
    slow, fast = med['published, per-sample data'], med['ours (default)']
    print(f"per step: ours is {slow / fast:.1f}x faster than the published per-sample step "
          f"({med['published, batched data'] / fast:.1f}x than the published step on batched data)")
    print(f"whole run: published {slow * pub.steps / 60:.1f} min vs ours {fast * ours.steps / 60:.1f} min: "
          f"{slow * pub.steps / (fast * ours.steps):.1f}x less wall time")

def _busy_loop():
    return subprocess.Popen([sys.executable, '-c', 'while True: pass'])

def _second_training(precision, tmp):
    "A default-recipe softfactor-train in another process; returns once its loop runs."
    p = subprocess.Popen(['softfactor-train', '--out', os.path.join(tmp, f'run-{precision}-{time.time_ns()}'), '--steps', '100000',
                          '--precision', precision, '--log-every', '1', '--ckpt-every', '100000'],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = bytearray()
    def pump():
        while chunk := os.read(p.stderr.fileno(), 4096): seen.extend(chunk[-200:])
    threading.Thread(target=pump, daemon=True).start()
    t0 = time.time()
    while b'/100000' not in seen and time.time() - t0 < 120: time.sleep(0.1)
    time.sleep(2.0)  # past its first, slower steps
    return p

def contention(args):
    ours = TrainConfig()
    bf16_cpu = bool(torch.cpu.get_capabilities().get('avx512_bf16') or torch.cpu.get_capabilities().get('amx_bf16'))
    precisions = ('float32', 'bfloat16') if bf16_cpu else ('float32',)
    cands = {f'{p}, {t} thread{"s" if t > 1 else ""}': (ours, make_step(ours, bf16=p == 'bfloat16'), t)
             for p in precisions for t in (2, 1)}
    caps = torch.cpu.get_capabilities()
    print(f"torch {torch.__version__}; CPU: {caps.get('cpu_name', '?')}, {os.cpu_count()} cores, "
          f"AVX512-BF16 {bool(caps.get('avx512_bf16'))}, AMX {bool(caps.get('amx_bf16'))}; "
          f"default precision here: {'bfloat16' if bf16_fast('cpu') else 'float32'}; median of {args.reps} steps")
    res = {'alone': time_rounds(cands, args.reps)}
    busy = _busy_loop()
    try: res['beside a 1-core busy loop'] = time_rounds(cands, args.reps)
    finally: busy.kill(); busy.wait()
    with tempfile.TemporaryDirectory() as tmp:
        res['beside a 2nd training'] = {}
        for k, (cfg, step, threads) in cands.items():  # the other run uses the same precision as the candidate
            other = _second_training('bfloat16' if k.startswith('bfloat16') else 'float32', tmp)
            try: res['beside a 2nd training'][k] = time_rounds({k: (cfg, step, threads)}, args.reps)[k]
            finally: other.kill(); other.wait()
    conds = list(res)
    print(f"{'candidate':22}" + ''.join(f"{c:>30}" for c in conds))
    for k in cands:
        cells = [f"{1000 * res[c][k]:8.0f} ms ({res[c][k] / res['alone'][k]:4.1f}x)" for c in conds]
        print(f"{k:22}" + ''.join(f"{x:>30}" for x in cells))
    d = 'float32, 2 threads' if not bf16_fast('cpu') else 'bfloat16, 2 threads'
    print(f"default ({d}): beside a busy loop {res[conds[1]][d] / res['alone'][d]:.2f}x (target <= 2.5x), "
          f"beside a second training {res[conds[2]][d] / res['alone'][d]:.2f}x (target <= 4x)")

def _median_time(fn, reps):
    fn(); fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def step_flops(step):
    "Floating-point operations of one call of `step` (matrix products and convolutions, forward + backward)."
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: step()
    return fc.get_total_flops()

def gemm_peak(reps, n=2048):
    "Float32 FLOP/s of an n x n matrix product."
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / _median_time(lambda: a @ b, reps)

def largest_conv_peak(cfg, reps):
    "FLOP/s of the encoder's largest convolution alone, forward + backward, at a step's number of images."
    enc = ToyEncoder(cfg.latent_dim)
    rows = layer_costs(enc, cfg.sz)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    i = max(range(len(convs)), key=lambda j: rows[j]['macs'])
    conv, images = convs[i], cfg.batch_size * (cfg.views_per_anchor + 1)
    h = cfg.sz
    for c in convs[:i]: h = (h + 2 - 3) // c.stride[0] + 1
    x = torch.randn(images, conv.in_channels, h, h, requires_grad=True)
    if cfg.channels_last: conv, x = conv.to(memory_format=torch.channels_last), x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    def fwd_bwd():
        conv.zero_grad(); x.grad = None; conv(x).sum().backward()
    return step_flops(fwd_bwd) / _median_time(fwd_bwd, reps), f"conv {i + 1} ({conv.in_channels}->{conv.out_channels}, {h}x{h} in, {images} images)"

_CATEGORIES = (('convolution', ('conv',)), ('matrix products', ('mm', 'addmm', 'bmm', 'linear', 'matmul')),
               ('activation (GELU)', ('gelu',)), ('optimizer', ('adam', '_foreach', 'lerp', 'sqrt', 'addcdiv', 'addcmul')),
               ('copies and layout', ('copy', 'contiguous', 'clone', 'to', 'empty', 'cat', 'stack', 'roll', 'index', 'gather', 'scatter', 'pad', 'narrow', 'slice', 'select', 'view', 'reshape', 'permute', 'transpose', 'expand')),
               ('reductions and norms', ('sum', 'mean', 'norm', 'max', 'min', 'cumsum', 'sort')))

def _category(name):
    n = name.lower().replace('aten::', '')
    for cat, keys in _CATEGORIES:
        if any(k in n for k in keys): return cat
    return 'other elementwise ops'

def profile_step(step, reps):
    "Where a step's time goes: by phase (data, forward + loss, backward, optimizer) and by kind of operator."
    from torch.profiler import profile, ProfilerActivity
    step(); step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps): step()
    events = prof.key_averages()
    phases = {e.key: e.cpu_time_total for e in events if e.key in ('data', 'forward + loss', 'backward', 'optimizer')}
    cats = {}
    for e in events:
        if e.key in phases or e.key.startswith('ProfilerStep'): continue
        cats[_category(e.key)] = cats.get(_category(e.key), 0) + e.self_cpu_time_total
    return phases, cats

def limit(args):
    pub, ours = published_config(), TrainConfig()
    threads = torch.get_num_threads()
    steps = {'published (batched data)': (pub, make_step(pub, bf16=False)), 'ours (default)': (ours, make_step(ours, bf16=False))}
    flops = {k: step_flops(s) for k, (_, s) in steps.items()}
    med = time_rounds({k: (c, s, threads) for k, (c, s) in steps.items()}, args.reps)
    gemm = gemm_peak(args.reps)
    conv, conv_name = largest_conv_peak(ours, args.reps)
    print(f"torch {torch.__version__}, {threads} threads, float32, median of {args.reps} rounds")
    print(f"peaks measured in this run: {gemm / 1e9:.0f} GFLOP/s (2048^2 matrix product), "
          f"{conv / 1e9:.0f} GFLOP/s ({conv_name}, forward + backward); convolution / GEMM = {conv / gemm:.2f}")
    print(f"{'recipe':28} {'GFLOP/step':>10} {'ms/step':>8} {'GFLOP/s':>8} {'of GEMM':>8} {'of conv':>8}")
    for k in steps:
        rate = flops[k] / med[k]
        print(f"{k:28} {flops[k] / 1e9:>10.2f} {1000 * med[k]:>8.1f} {rate / 1e9:>8.1f} {rate / gemm:>8.0%} {rate / conv:>8.0%}")
    phases, cats = profile_step(make_step(ours, bf16=False, marks=True), max(2, args.reps // 2))
    total = sum(phases.values())
    print("where a default step's time goes (torch.profiler, share of the step):")
    print("  by phase:    " + ", ".join(f"{k} {v / total:.0%}" for k, v in phases.items()))
    tot_ops = sum(cats.values())
    print("  by operator: " + ", ".join(f"{k} {v / tot_ops:.0%}" for k, v in sorted(cats.items(), key=lambda kv: -kv[1])))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--reps', type=int, default=7, help='rounds (each candidate takes one step per round)')
    p.add_argument('--compile', action='store_true', help='also time our recipe under torch.compile')
    p.add_argument('--search', action='store_true', help='also time the steps of the recipe search (triplets, 6, 8 and 12 views per anchor)')
    p.add_argument('--contention', action='store_true', help='time the default step alone, beside a busy loop and beside a second training')
    p.add_argument('--limit', action='store_true', help="the step's FLOPs, the machine's matrix-product and convolution peaks, the step's share of them, and a profile")
    args = p.parse_args()
    if args.limit: return limit(args)
    contention(args) if args.contention else speed(args)

if __name__ == '__main__': main()
