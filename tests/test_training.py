"End-to-end tests of softfactor.training: resume, checkpoints, run directories, non-finite losses, the CLI."
import json, os, subprocess, sys
from pathlib import Path
import pytest, torch
import softfactor.training as tr
from softfactor.training import TrainConfig, train, load_encoder, load_checkpoint, save_checkpoint, NonFiniteLossError, weights_checksum

SMALL = dict(batch_size=16, device='cpu', warmup=0.1, precision='float32')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1'}
torch.set_num_threads(1)  # tiny batches: threads only add overhead (and contention on a shared machine)

def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

def _cli(*args, cwd=None):
    return subprocess.run(['softfactor-train', *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)

def test_resume_is_bit_identical(tmp_path):
    cfg = TrainConfig(steps=20, ckpt_every=5, **SMALL)
    full = train(cfg, out=tmp_path / 'full', progress=False, evaluate=False)
    first = train(cfg, out=tmp_path / 'part', progress=False, stop_at=10, evaluate=False)
    assert len(first['loss']) == 10 and load_checkpoint(tmp_path / 'part')['step'] == 10
    second = train(None, out=tmp_path / 'part', resume=True, progress=False, evaluate=False)
    assert _same_weights(full.encoder, second.encoder)
    assert second['loss'] == full['loss'] and second['step'] == list(range(1, 21))
    # the optimizer state on disk is the same too
    a, b = load_checkpoint(tmp_path / 'full'), load_checkpoint(tmp_path / 'part')
    assert all(torch.equal(a['optimizer']['state'][i]['exp_avg_sq'], b['optimizer']['state'][i]['exp_avg_sq']) for i in a['optimizer']['state'])

def test_resume_refuses_a_changed_config(tmp_path):
    train(TrainConfig(steps=4, **SMALL), out=tmp_path, progress=False, stop_at=2, evaluate=False)
    with pytest.raises(ValueError, match='cannot resume with a different lr'):
        train(TrainConfig(steps=4, lr=1e-3, **SMALL), out=tmp_path, resume=True, progress=False)
    h = train(TrainConfig(steps=6, **SMALL), out=tmp_path, resume=True, progress=False, evaluate=False)  # more steps is fine
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
    train(TrainConfig(steps=2, **SMALL), out=tmp_path / 'run', progress=False, evaluate=False)
    good = (tmp_path / 'run' / 'checkpoint.pt').read_bytes()
    (tmp_path / 'cut.pt').write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match='is corrupt or not a checkpoint'): load_encoder(tmp_path / 'cut.pt')
    torch.save({'model': {}}, tmp_path / 'foreign.pt')
    with pytest.raises(ValueError, match='not a softfactor training checkpoint'): load_encoder(tmp_path / 'foreign.pt')
    with pytest.raises(FileNotFoundError): load_encoder(tmp_path / 'nothing')
    (tmp_path / 'run' / 'checkpoint.pt').write_bytes(good[:100])  # resuming from a corrupt checkpoint: clear CLI error
    r = _cli('--out', tmp_path / 'run', '--resume', '--steps', 4, '--quiet')
    assert r.returncode == 2 and 'is corrupt or not a checkpoint' in r.stderr and 'weights_only' not in r.stderr and 'Traceback' not in r.stderr

def test_run_directory_is_never_overwritten(tmp_path):
    cfg = TrainConfig(steps=2, **SMALL)
    train(cfg, out=tmp_path / 'run', progress=False, evaluate=False)
    before = (tmp_path / 'run' / 'checkpoint.pt').read_bytes()
    with pytest.raises(FileExistsError, match='resume=True.*force=True'): train(cfg, out=tmp_path / 'run', progress=False)
    assert (tmp_path / 'run' / 'checkpoint.pt').read_bytes() == before
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    with pytest.raises(FileExistsError): train(cfg, out=tmp_path / 'mine', progress=False)
    h = train(TrainConfig(steps=3, **SMALL), out=tmp_path / 'run', force=True, progress=False, evaluate=False)
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
        train(cfg, model=_BreaksDown(at=8), out=tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt['step'] == 5
    assert all(torch.isfinite(v).all() for v in ckpt['model'].values())
    assert not (tmp_path / 'metrics.json').exists()

def test_nan_loss_stops(tmp_path, monkeypatch):
    orig = tr.factorization_loss
    monkeypatch.setattr(tr, 'factorization_loss', lambda *a: orig(*a) * float('nan'))
    with pytest.raises(NonFiniteLossError, match='non-finite loss .* at step 1'):
        train(TrainConfig(steps=5, **SMALL), out=tmp_path, progress=False)
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

# ---------------------------------------------------------------- the command line is generated from TrainConfig

def test_cli_options_are_the_config_fields():
    "Every TrainConfig field is an option whose help is the field's comment and whose default is the dataclass default."
    from dataclasses import fields
    from softfactor.base import Command, _options, make_parser, field_comments, option_flag
    parser = make_parser('softfactor-train', '', _options(Command(tr.train_cli, (TrainConfig,))))
    actions = {a.dest: a for a in parser._actions}
    comments = field_comments(TrainConfig)
    for f in fields(TrainConfig):
        a = actions[f.name]
        assert option_flag(f.name) in a.option_strings, f.name
        assert a.help.startswith(comments[f.name].rstrip('.')), f.name
        shown = 'on' if f.default is True else 'off' if f.default is False else 'none' if f.default is None else str(f.default)
        assert a.help.endswith(f'(default: {shown})'), (f.name, a.help)

def test_cli_version():
    r = _cli('--version')
    assert r.returncode == 0 and r.stdout.startswith('softfactor-train ') and 'torch' in r.stdout

def test_cli_unwritable_out_fails_at_once(tmp_path):
    (tmp_path / 'file').write_text('')
    r = _cli('--out', tmp_path / 'file' / 'run', '--quiet')
    assert r.returncode == 2 and r.stderr.startswith('softfactor-train: error: out: cannot create'), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1

def test_readme_command_can_run_twice(tmp_path):
    args = ('--out', tmp_path / 'run', '--steps', 3, '--batch-size', 16, '--device', 'cpu', '--quiet')
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / 'run' / 'checkpoint.pt').read_bytes()
    second = _cli(*args)
    assert second.returncode == 0 and 'already holds this finished run' in second.stdout, second.stderr
    assert (tmp_path / 'run' / 'checkpoint.pt').read_bytes() == before  # nothing rewritten
    other = _cli(*args[:-1], '--lr', '0.001', '--quiet')  # different settings: refused, with what to do
    assert other.returncode == 2 and 'finished run (3 of 3 steps)' in other.stderr and '--resume' in other.stderr and '--force' in other.stderr

# ---------------------------------------------------------------- interruption: Ctrl-C and SIGTERM

def _start(out, *extra):
    "A long softfactor-train run whose progress bar (stderr) tells when the loop has started."
    import threading
    p = subprocess.Popen(['softfactor-train', '--out', str(out), '--steps', '100000', '--batch-size', '32', '--device', 'cpu',
                          '--schedule', 'constant', '--warmup', '0', '--precision', 'float32', '--log-every', '1', *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    buf = bytearray()
    def pump():
        while chunk := os.read(p.stderr.fileno(), 4096): buf.extend(chunk)
    threading.Thread(target=pump, daemon=True).start()
    import time
    t0 = time.time()
    while b'/100000' not in buf and time.time() - t0 < 120: time.sleep(0.05)
    time.sleep(1.0)  # a few steps
    return p, buf

@pytest.mark.parametrize('sig, status', [(2, 130), (15, 143)])
def test_signal_stops_within_two_seconds_with_a_checkpoint_that_resumes(tmp_path, sig, status):
    import signal as signals, time
    p, buf = _start(tmp_path / 'run')
    assert p.poll() is None, bytes(buf).decode()[-2000:]
    t0 = time.time(); p.send_signal(sig)
    p.wait(timeout=30); elapsed = time.time() - t0
    time.sleep(0.2)
    last = bytes(buf).decode().strip().splitlines()[-1]
    assert p.returncode == status, (p.returncode, last)
    assert elapsed < 2.0, elapsed
    m = __import__('re').match(r'softfactor-train: interrupted at step (\d+) of 100000; checkpoint written to .*; continue with --resume$', last)
    assert m, last
    step = int(m[1])
    assert load_checkpoint(tmp_path / 'run')['step'] == step
    # --resume (with more steps) continues from there and ends where an uninterrupted run ends
    r = _cli('--out', tmp_path / 'run', '--resume', '--steps', step + 3, '--quiet')
    assert r.returncode == 0, r.stderr
    cfg = TrainConfig(steps=step + 3, batch_size=32, device='cpu', schedule='constant', warmup=0., precision='float32', log_every=1)
    whole = train(cfg, progress=False)
    assert weights_checksum(load_encoder(tmp_path / 'run')) == weights_checksum(whole.encoder)

def test_ctrl_c_before_the_first_step_leaves_nothing(tmp_path):
    "Interrupted while the source is being built: one line, status 130, no run directory left behind."
    import signal as signals, time
    script = ("import sys, time\nimport softfactor.training as t\nfrom softfactor.blobs import BlobSource\n"
              "t.SOURCES['slow'] = lambda cfg: (time.sleep(30), BlobSource())[1]\n"
              "sys.argv = ['softfactor-train', '--data', 'slow', '--out', sys.argv[1]]\nprint('ready', flush=True)\nt.main()\n")
    p = subprocess.Popen([sys.executable, '-c', script, str(tmp_path / 'run')], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout.readline().strip() == 'ready'
    time.sleep(1.5)
    p.send_signal(signals.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert err.strip() == 'softfactor-train: interrupted before the first step'
    assert not (tmp_path / 'run').exists()

# ---------------------------------------------------------------- several views per anchor (the dense loss)

def test_dense_runs_resume_bit_identical(tmp_path):
    cfg = TrainConfig(steps=12, ckpt_every=4, views_per_anchor=8, view_mix='paired', pair_weights='typed', **{**SMALL, 'batch_size': 8})
    full = train(cfg, out=tmp_path / 'full', progress=False, evaluate=False)
    train(cfg, out=tmp_path / 'part', progress=False, stop_at=5, evaluate=False)
    part = train(None, out=tmp_path / 'part', resume=True, progress=False, evaluate=False)
    assert weights_checksum(full.encoder) == weights_checksum(part.encoder)
    assert full['loss'] == part['loss']

@pytest.mark.parametrize('kw, message', [
    (dict(views_per_anchor=3), 'views_per_anchor must be 2 (triplets) or an even number >= 4'),
    (dict(views_per_anchor=6, view_mix='paired'), 'a multiple of 4'),
    (dict(view_mix='shuffled'), 'view_mix must be one of random, paired'),
    (dict(pair_weights='equal'), 'pair_weights must be one of uniform, typed'),
])
def test_dense_settings_are_checked(kw, message):
    with pytest.raises(ValueError, match=__import__("re").escape(message)): TrainConfig(**kw)

def test_old_configs_keep_their_meaning():
    "A config saved before a field existed means what runs did then: triplets, uniform weights, its own views and precision."
    old = dict(latent_dim=16, steps=10, batch_size=8, canvas=True, amp=False)
    cfg = TrainConfig.from_dict(old)
    assert (cfg.views, cfg.precision, cfg.views_per_anchor, cfg.pair_weights) == ('canvas', 'float32', 2, 'uniform')
