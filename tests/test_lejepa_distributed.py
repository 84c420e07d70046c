"""SIGReg under torch.distributed: two gloo processes on CPU, each holding part of a batch, must give the
statistic (and the gradients) of one process holding the whole batch."""
import os, socket, subprocess, sys, textwrap
import pytest
import torch

WORLD = 2
SIZES = (40, 24)       # unequal shares: the pooled ECF must weight them by their sizes
N, K, M, STEP = sum(SIZES), 6, 32, 7

WORKER = textwrap.dedent(f"""
    import os, sys, torch, torch.distributed as dist
    from softfactor.lejepa import SIGReg
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    x, W0 = torch.load(sys.argv[1])
    sizes = {SIZES!r}
    lo = sum(sizes[:rank]); xs = x[lo:lo + sizes[rank]]
    out = {{}}
    xr = xs.clone().requires_grad_()
    val = SIGReg(xr, {STEP}, {M}); val.backward()
    out['value'], out['grad'] = val.detach(), xr.grad
    out['per_slice'] = SIGReg(xs, {STEP}, {M}, reduction='none')
    out['modulus_first'] = SIGReg(xs, {STEP}, {M}, statistic='modulus_first')
    out['local'] = SIGReg(xs, {STEP}, {M}, distributed=False)
    out['float32'] = SIGReg(xs.float(), {STEP}, {M})
    # a shared linear layer, its gradient averaged over ranks as DistributedDataParallel does
    W = W0.clone().requires_grad_()
    SIGReg(xs @ W, {STEP}, {M}).backward()
    g = W.grad.clone(); dist.all_reduce(g); out['ddp_grad'] = g / world
    torch.save(out, os.path.join(sys.argv[2], f'rank{{rank}}.pt'))
    dist.destroy_process_group()
""")


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('lejepa_dist')
    g = torch.Generator().manual_seed(0)
    x = 1.3 * torch.randn(N, K, generator=g, dtype=torch.float64) + 0.4   # not quite Gaussian: a real gradient
    W0 = torch.randn(K, K, generator=g, dtype=torch.float64) / K ** 0.5
    torch.save((x, W0), tmp / 'inputs.pt')
    env = dict(os.environ, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(_free_port()), WORLD_SIZE=str(WORLD),
               OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, '-c', WORKER, str(tmp / 'inputs.pt'), str(tmp)],
                              env=dict(env, RANK=str(r)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for r in range(WORLD)]
    try:
        logs = [p.communicate(timeout=120)[0].decode() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None: p.kill()
    for p, log in zip(procs, logs): assert p.returncode == 0, log
    return x, W0, [torch.load(tmp / f'rank{r}.pt') for r in range(WORLD)]


def test_value_is_that_of_the_global_batch(results):
    from softfactor.lejepa import SIGReg
    x, _, outs = results
    ref = SIGReg(x, STEP, M)
    for o in outs:
        torch.testing.assert_close(o['value'], ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(o['per_slice'], SIGReg(x, STEP, M, reduction='none'), rtol=0, atol=1e-5)
        torch.testing.assert_close(o['modulus_first'], SIGReg(x, STEP, M, statistic='modulus_first'), rtol=0, atol=1e-5)
        torch.testing.assert_close(o['float32'], SIGReg(x.float(), STEP, M), rtol=1e-5, atol=1e-5)
    # without the all-reduce each rank would test only its own share, a different number
    assert all(abs(o['local'].item() - ref.item()) > 1e-3 for o in outs)


def test_gradients_match(results):
    from softfactor.lejepa import SIGReg
    x, W0, outs = results
    xr = x.clone().requires_grad_()
    SIGReg(xr, STEP, M).backward()
    # each rank's samples get world_size x the gradient of the global statistic ...
    grads = torch.cat([o['grad'] for o in outs]) / WORLD
    torch.testing.assert_close(grads, xr.grad, rtol=0, atol=1e-8)
    # ... so that averaging parameter gradients over ranks (DDP) gives exactly the single-process gradient
    W = W0.clone().requires_grad_()
    SIGReg(x @ W, STEP, M).backward()
    for o in outs: torch.testing.assert_close(o['ddp_grad'], W.grad, rtol=0, atol=1e-8)


def test_import_in_fresh_process():
    code = "import softfactor.lejepa as m; print(sorted(m.__all__))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "'LeJEPA'" in r.stdout and "'SIGReg'" in r.stdout
