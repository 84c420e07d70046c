"End-to-end tests of softfactor.training: resume, checkpoints, run directories, non-finite losses, the CLI."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
import softfactor.training as tr
from softfactor.training import TrainConfig, train, load_encoder, load_checkpoint, save_checkpoint, NonFiniteLossError

SMALL = dict(batch_size=16, device='cpu', warmup=0.1)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
torch.set_num_threads(1)  # tiny batches: threads only add overhead (and contention on a shared machine)

def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

def _cli(*args, cwd=None):
    return subprocess.run(['softfactor-train', *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)

def test_resume_is_bit_identical(tmp_path):
    cfg = TrainConfig(steps=20, ckpt_every=5, **SMALL)
    full = train(cfg, tmp_path / 'full', progress=False, evaluate=False)
    first = train(cfg, tmp_path / 'part', progress=False, stop_at=10, evaluate=False)
    assert len(first['loss']) == 10 and load_checkpoint(tmp_path / 'part')['step'] == 10
    second = train(None, tmp_path / 'part', resume=True, progress=False, evaluate=False)
    assert _same_weights(full.encoder, second.encoder)
    assert second['loss'] == full['loss'] and second['step'] == list(range(1, 21))
    # the optimizer state on disk is the same too
    a, b = load_checkpoint(tmp_path / 'full'), load_checkpoint(tmp_path / 'part')
    assert all(torch.equal(a['optimizer']['state'][i]['exp_avg_sq'], b['optimizer']['state'][i]['exp_avg_sq']) for i in a['optimizer']['state'])

def test_resume_refuses_a_changed_config(tmp_path):
    train(TrainConfig(steps=4, **SMALL), tmp_path, progress=False, stop_at=2, evaluate=False)
    with pytest.raises(ValueError, match='cannot resume with a different lr'):
        train(TrainConfig(steps=4, lr=1e-3, **SMALL), tmp_path, resume=True, progress=False)
    h = train(TrainConfig(steps=6, **SMALL), tmp_path, resume=True, progress=False, evaluate=False)  # more steps is fine
    assert h['step'][-1] == 6

def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'checkpoint.pt'
    save_checkpoint({'x': torch.zeros(3)}, path)
    def dies_halfway(obj, f): f.write(b'half a checkpoint'); raise KeyboardInterrupt
    monkeypatch.setattr(torch, 'save', dies_halfway)
    with pytest.raises(KeyboardInterrupt): save_checkpoint({'x': torch.ones(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path)['x'], torch.zeros(3))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ['checkpoint.pt']  # and no temporary file is left

def test_corrupt_and_foreign_checkpoints(tmp_path):
    train(TrainConfig(steps=2, **SMALL), tmp_path / 'run', progress=False, evaluate=False)
    good = (tmp_path / 'run' / 'checkpoint.pt').read_bytes()
    (tmp_path / 'cut.pt').write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match='not a readable checkpoint'): load_encoder(tmp_path / 'cut.pt')
    torch.save({'model': {}}, tmp_path / 'foreign.pt')
    with pytest.raises(ValueError, match='not a softfactor training checkpoint'): load_encoder(tmp_path / 'foreign.pt')
    with pytest.raises(FileNotFoundError): load_encoder(tmp_path / 'nothing')
    (tmp_path / 'run' / 'checkpoint.pt').write_bytes(good[:100])  # resuming from a corrupt checkpoint: clear CLI error
    r = _cli('--out', tmp_path / 'run', '--resume', '--steps', 4, '--quiet')
    assert r.returncode == 2 and 'not a readable checkpoint' in r.stderr and 'Traceback' not in r.stderr

def test_run_directory_is_never_overwritten(tmp_path):
    cfg = TrainConfig(steps=2, **SMALL)
    train(cfg, tmp_path / 'run', progress=False, evaluate=False)
    before = (tmp_path / 'run' / 'checkpoint.pt').read_bytes()
    with pytest.raises(FileExistsError, match='--resume.*--force'): train(cfg, tmp_path / 'run', progress=False)
    assert (tmp_path / 'run' / 'checkpoint.pt').read_bytes() == before
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError): train(cfg, tmp_path / 'mine', progress=False)
    h = train(TrainConfig(steps=3, **SMALL), tmp_path / 'run', force=True, progress=False, evaluate=False)
    assert load_checkpoint(tmp_path / 'run')['step'] == 3 == h['step'][-1]
    r = _cli('--out', tmp_path / 'run', '--steps', 2, '--quiet')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and '--force' in r.stderr

class _BreaksDown(tr.ToyEncoder):
    "An encoder whose output turns to NaN on its `at`-th call."
    def __init__(self, at): super().__init__(16); self.at, self.calls = at, 0
    def forward(self, x):
        self.calls += 1; z = super().forward(x)
        return z * float('nan') if self.calls == self.at else z

def test_non_finite_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = TrainConfig(steps=20, ckpt_every=5, **SMALL)
    with pytest.raises(NonFiniteLossError, match='at step 8'):
        train(cfg, tmp_path, progress=False, model=_BreaksDown(at=8))
    ckpt = load_checkpoint(tmp_path)
    assert ckpt['step'] == 5
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values())
    assert not (tmp_path / 'metrics.json').exists()

def test_nan_loss_stops(tmp_path, monkeypatch):
    orig = tr.factorization_loss
    monkeypatch.setattr(tr, 'factorization_loss', lambda *a: orig(*a) * float('nan'))
    with pytest.raises(NonFiniteLossError, match='non-finite loss .* at step 1'):
        train(TrainConfig(steps=5, **SMALL), tmp_path, progress=False)
    assert not (tmp_path / 'checkpoint.pt').exists()

def _main_in_process(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['softfactor-train', *map(str, argv)])
    with pytest.raises(SystemExit) as e: tr.main()
    return e.value.code, capsys.readouterr().err

def test_cli_bad_options_one_line_exit_2(tmp_path, monkeypatch, capsys):
    for args in (['--bogus'], ['--steps', 'many'], ['--steps', '0'], ['--lr', '-1'], ['--schedule', 'step'],
                 ['--device', 'tpu'], ['--batch-size', '2.5'], ['--max-shift', '16'], ['--warmup', '2']):
        code, err = _main_in_process(['--out', tmp_path / 'run', *args], monkeypatch, capsys)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith('softfactor-train: error:'), (args, err)
    assert not (tmp_path / 'run').exists()
    r = _cli('--out', tmp_path / 'run', '--steps', 'many')  # and through the installed entry point
    assert r.returncode == 2 and r.stderr.strip() == "softfactor-train: error: argument --steps: invalid int value: 'many'"

def test_cli_end_to_end_and_load_encoder(tmp_path):
    out = tmp_path / 'run'
    r = _cli('--out', out, '--steps', 4, '--batch-size', 16, '--device', 'cpu', '--seed', 3, '--quiet')
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(tr.RUN_FILES)
    cfg = json.loads((out / 'config.json').read_text())
    assert (cfg['steps'], cfg['batch_size'], cfg['seed'], cfg['lr']) == (4, 16, 3, TrainConfig().lr)
    hist = json.loads((out / 'history.json').read_text())
    assert hist['step'] == [1, 2, 3, 4] and len(hist['loss']) == 4
    metrics = json.loads((out / 'metrics.json').read_text())
    for k in ('same_sign_cos', 'opp_sign_cos', 'cross_abs_cos', 'angle_pitch_deg', 'angle_time_deg'):
        assert isinstance(metrics[k], float) and len(metrics['per_seed']) == 3
    assert (out / 'loss.png').read_bytes()[:4] == b'\x89PNG'
    a, b = load_encoder(out), load_encoder(out / 'checkpoint.pt')
    assert not a.training and not b.training and _same_weights(a, b)
    x = torch.rand(5, 1, 16, 16)
    assert a(x).shape == (5, 16)
    r = _cli('--out', out, '--resume', '--steps', 6, '--quiet')  # --resume continues with the saved settings
    assert r.returncode == 0, r.stderr
    assert json.loads((out / 'history.json').read_text())['step'] == list(range(1, 7))

def test_import_in_fresh_process():
    r = subprocess.run([sys.executable, '-c', 'import softfactor.training as t; print(t.TrainConfig().steps)'],
                       capture_output=True, text=True, env=ENV)
    assert r.returncode == 0 and int(r.stdout) == TrainConfig().steps

def test_wandb_only_when_asked_and_installed(tmp_path, monkeypatch):
    import types
    calls = []
    class Run:
        def log(self, d, step): calls.append(('log', step, sorted(d)))
        def finish(self): calls.append(('finish',))
    fake = types.SimpleNamespace(init=lambda project, config: calls.append(('init', project, config['steps'])) or Run())
    monkeypatch.setitem(sys.modules, 'wandb', fake)
    train(TrainConfig(steps=4, log_every=2, **SMALL), progress=False)
    assert calls == []  # installed but not asked for
    train(TrainConfig(steps=4, log_every=2, wandb=True, wandb_project='p', **SMALL), progress=False)
    assert calls == [('init', 'p', 4), ('log', 2, ['factorization', 'loss', 'lr']), ('log', 4, ['factorization', 'loss', 'lr']), ('finish',)]
    monkeypatch.setitem(sys.modules, 'wandb', None)  # asked for but not installed: a warning, and the run goes on
    with pytest.warns(UserWarning, match='wandb package is not installed'):
        h = train(TrainConfig(steps=2, wandb=True, **SMALL), progress=False)
    assert h['step'] == [1, 2]
