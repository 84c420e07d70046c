"""Training speed: the published recipe vs our default, per step and per run, measured side by side.

    python bench/train_speed.py [--reps 5] [--compile] [--search]

Every candidate takes one optimizer step in turn, round after round, so that a machine shared with other
jobs slows them all alike; each per-step time is the median over rounds. Candidates:

- published, per-sample data: batch 1,024, `BlobShiftDataset` through a `DataLoader` (one Python call per
  triplet), default memory layout: the published recipe as its code runs it;
- published, batched data: the same step with `blob_triplet_batch` instead;
- ours: `TrainConfig()` (batch 512, channels-last, batched data on the training device, bf16 convolutions
  where the CPU computes bf16 natively), and the same step in float32 (`--no-amp`).
"""
import argparse, statistics, time
from dataclasses import replace
from softfactor.training import TrainConfig, published_config, bf16_native, _Bf16Convs, _batch_loss, _draw_batch  # first: it sets OMP_WAIT_POLICY before torch loads
import torch
from torch.utils.data import DataLoader
from softfactor.blobs import BlobShiftDataset
from softfactor.encoder import ToyEncoder

def make_step(cfg, per_sample=False, compile=False, bf16=False):
    torch.manual_seed(0)
    enc = ToyEncoder(cfg.latent_dim)
    if cfg.channels_last: enc = enc.to(memory_format=torch.channels_last)
    net = _Bf16Convs(enc) if bf16 else enc
    net = torch.compile(net) if compile else net
    opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    batches = iter(DataLoader(BlobShiftDataset(10**9), batch_size=cfg.batch_size)) if per_sample else None
    def step():  # the training loop's own step, on either data path
        batch = next(batches)[:4] if per_sample else _draw_batch(cfg, g, torch.device('cpu'), cfg.batch_size)
        loss, _ = _batch_loss(net, cfg, batch, 0)
        opt.zero_grad(); loss.backward(); opt.step()
    return step

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--reps', type=int, default=5, help='rounds (each candidate takes one step per round)')
    p.add_argument('--compile', action='store_true', help='also time our recipe under torch.compile')
    p.add_argument('--search', action='store_true', help='also time the other batch sizes of the recipe search')
    args = p.parse_args()
    pub, ours = published_config(), TrainConfig()
    cands = {'published, per-sample data': (pub, make_step(pub, per_sample=True)),
             'published, batched data': (pub, make_step(pub)),
             'ours': (ours, make_step(ours, bf16=ours.amp and bf16_native('cpu')))}
    if ours.amp and bf16_native('cpu'): cands['ours, float32 (--no-amp)'] = (ours, make_step(ours))
    if args.compile: cands['ours, torch.compile'] = (ours, make_step(ours, compile=True))
    if args.search:
        for bs in (256, 1024):
            c = replace(ours, batch_size=bs)
            cands[f'batch {bs}, float32'] = (c, make_step(c))
            if bf16_native('cpu'): cands[f'batch {bs}, bf16'] = (c, make_step(c, bf16=True))
    times = {k: [] for k in cands}
    for k, (_, step) in cands.items(): step(); step()  # warm-up (and compilation)
    for _ in range(args.reps):
        for k, (_, step) in cands.items():
            t0 = time.perf_counter(); step(); times[k].append(time.perf_counter() - t0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps} rounds")
    print(f"{'candidate':30} {'batch':>6} {'ms/step':>9} {'steps':>6} {'run (min)':>10}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, (cfg, _) in cands.items():
        print(f"{k:30} {cfg.batch_size:>6} {1000 * med[k]:>9.1f} {cfg.steps:>6} {med[k] * cfg.steps / 60:>10.1f}")
    slow, fast = med['published, per-sample data'], med['ours']
    print(f"per step: ours is {slow / fast:.1f}x faster than the published per-sample step "
          f"({med['published, batched data'] / fast:.1f}x than the published step on batched data)")
    print(f"whole run: published {slow * pub.steps / 60:.1f} min vs ours {fast * ours.steps / 60:.1f} min: "
          f"{slow * pub.steps / (fast * ours.steps):.0f}x less wall time")

if __name__ == '__main__': main()
