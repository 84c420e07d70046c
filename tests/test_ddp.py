"Data-parallel training on CPU: `torchrun --nproc_per_node=2 --no-python softfactor-train ...` with the gloo backend."
import json, os, shutil, socket, subprocess
import pytest, torch
from softfactor.training import load_encoder, load_checkpoint, weights_checksum

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _torchrun(*args, nproc=2):
    cmd = ['torchrun', f'--nproc_per_node={nproc}', '--master_addr=127.0.0.1', f'--master_port={_free_port()}',
           '--no-python', 'softfactor-train', *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, 'OMP_NUM_THREADS': '1'})

@pytest.mark.skipif(shutil.which('torchrun') is None, reason='torchrun is not installed')
def test_two_processes_stay_in_sync(tmp_path):
    out = tmp_path / 'ddp'
    r = _torchrun('--steps', 5, '--batch-size', 64, '--device', 'cpu', '--seed', 1, '--ckpt-every', 2, '--quiet', '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ['checkpoint.pt', 'config.json', 'history.json', 'loss.png', 'metrics.json']
    hist = json.loads((out / 'history.json').read_text())
    # every process hashed its own final weights: they agree, and they are what process 0 saved
    sums = hist['rank_checksums']
    assert len(sums) == 2 and sums[0] == sums[1] == weights_checksum(load_encoder(out))
    ckpt = load_checkpoint(out)
    assert ckpt['world_size'] == 2 and ckpt['step'] == 5
    # per-process data seeds: the two data generators have different states
    data = ckpt['rng']['data']
    assert len(data) == 2 and not torch.equal(data[0], data[1])
    assert len(hist['loss']) == 5 and all(l == l for l in hist['loss'])
    # a distributed run resumes with the same number of processes
    r = _torchrun('--steps', 7, '--quiet', '--resume', '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    hist = json.loads((out / 'history.json').read_text())
    assert hist['step'][-1] == 7 and hist['rank_checksums'][0] == hist['rank_checksums'][1]

WORKER = """
import os, sys, json
from softfactor.training import train, TrainConfig
train(TrainConfig(steps=3, batch_size=64, device='cpu', ckpt_every=2), progress=False, evaluate=False)
names = [open(f'/proc/self/task/{t}/comm').read().strip() for t in os.listdir('/proc/self/task')]
open(os.path.join(sys.argv[1], os.environ['RANK'] + '.json'), 'w').write(json.dumps(names))
"""

@pytest.mark.skipif(shutil.which('torchrun') is None or not os.path.isdir('/proc/self/task'), reason='needs torchrun and /proc')
def test_train_releases_the_process_group(tmp_path):
    # a gloo thread alive after `train` can release a collective's buffers while Python shuts down, which aborts the
    # process ("terminate called without an active exception"): `train` must leave none behind
    script = tmp_path / 'worker.py'; script.write_text(WORKER)
    cmd = ['torchrun', '--nproc_per_node=2', '--master_addr=127.0.0.1', f'--master_port={_free_port()}', str(script), str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-3000:]
    for rank in '01':
        threads = json.loads((tmp_path / f'{rank}.json').read_text())
        assert [t for t in threads if 'gloo' in t] == [], threads
