"""Rendered notes (determinism, cache, pitch) and the multi-view study (losses, weight sharing, the sweep command:
resume after a kill, shards, bad input). Runs on one thread in well under two minutes."""
import json, math, os, signal, subprocess, sys, time, warnings
from pathlib import Path
import numpy as np
import pytest, torch
from softfactor.notes import (NotesConfig, NoteRenderer, render_program, render_key, load_notes, spectral_f0, cents_off,
                              check_soundfont, FAMILY_PROGRAMS, heldout_programs, PROGRAMS)
from softfactor.notes import probe_accuracies, majority_share, shuffled_labels, GM_FAMILY, FAMILIES
from softfactor.multiview import (info_nce, info_nce_separation, cosine_similarity_loss, cosine_separation_loss,
                                  vicreg_separation, vicreg_similarity, MultiViewAE, read_rows, SweepConfig, RunConfig,
                                  make_multiview_data, run_one, select_hybrid, select_contrastive, findings)

torch.set_num_threads(1)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
CLI = str(Path(sys.executable).parent / 'softfactor-multiview')  # the installed entry point
TINY = NotesConfig(programs=(0, 40), pitch_lo=60, pitch_hi=72, pitch_step=6)

@pytest.fixture(scope='module')
def cache(tmp_path_factory): return tmp_path_factory.mktemp('cache')

# --- notes ---------------------------------------------------------------------------------------------------

def test_rendering_is_deterministic():
    "The same config gives the same bytes, from a fresh synthesizer or after other notes."
    a = render_program(TINY, 0)['audio']
    r = NoteRenderer(TINY); r.render(40, 50); r.render(73, 80)  # leave voices behind on purpose
    b = render_program(TINY, 0, r)['audio']
    assert a.dtype == np.int16 and a.shape == (3, 64000)
    assert a.tobytes() == b.tobytes()
    assert np.abs(a).max(1).tolist() == [32767] * 3  # peak-normalised

def test_cache_key_holds_the_rendering_config_only():
    k = render_key(TINY)
    assert render_key(NotesConfig(programs=(0, 40), pitch_lo=60, pitch_hi=72, pitch_step=6, velocity=90)) != k
    assert render_key(NotesConfig(programs=(0, 40), pitch_lo=60, pitch_hi=72, pitch_step=6, release_s=0.5)) != k
    assert render_key(NotesConfig(programs=(0, 40), pitch_lo=60, pitch_hi=72, pitch_step=6, split_seed=3)) == k

def test_cache_is_used_and_a_corrupt_file_is_rebuilt(cache):
    first = load_notes(TINY, cache)
    assert first.render_time_s > 0 and len(first) == 6
    again = load_notes(TINY, cache)
    assert again.render_time_s == 0
    ref = again.audio(np.arange(6))
    f = first.directory / 'program_040.npz'
    data = bytearray(f.read_bytes()); data[len(data) // 2] ^= 0xFF; f.write_bytes(bytes(data))  # one flipped byte
    with pytest.warns(UserWarning, match='corrupt'): rebuilt = load_notes(TINY, cache)
    assert rebuilt.render_time_s > 0
    assert torch.equal(rebuilt.audio(np.arange(6)), ref)
    f.write_bytes(b'not a zip file')
    with pytest.warns(UserWarning, match='corrupt'): load_notes(TINY, cache)

def test_quiet_notes_are_dropped():
    cfg = NotesConfig(programs=(0,), pitch_lo=60, pitch_hi=62, min_peak_db=-0.001)  # nothing reaches 0 dBFS
    assert len(render_program(cfg, 0)['pitches']) == 0

@pytest.mark.parametrize('program,pitch,octaves', [(0, 48, 0), (0, 60, 0), (0, 72, 0), (40, 67, 0), (56, 60, 0),
                                                  (73, 72, 0), (71, 55, 0), (33, 40, 0), (16, 60, 1), (19, 48, 1)])
def test_spectral_f0_is_within_a_semitone(program, pitch, octaves):
    "The f0 of a rendered note is within a semitone of its MIDI pitch (organ stops: of the pitch an octave away)."
    cfg = NotesConfig(programs=(program,), pitch_lo=pitch, pitch_hi=pitch)
    x = render_program(cfg, program)['audio'][0] / 32767
    c = cents_off(spectral_f0(x, 16000), pitch)
    assert min(abs(c - 1200 * k) for k in range(-octaves, octaves + 1)) < 100, c

def test_family_table_and_split():
    progs = [p for ps in FAMILY_PROGRAMS.values() for p in ps]
    assert len(progs) == len(set(progs)) == len(PROGRAMS) == 91
    held = set(heldout_programs(PROGRAMS, 0.25, 0))
    for fam, ps in FAMILY_PROGRAMS.items():
        assert 1 <= len(held & set(ps)) < len(ps), fam  # every family has held-out and training instruments

def test_soundfont_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'): check_soundfont(tmp_path / 'nope.sf2')
    (tmp_path / 'fake.sf2').write_bytes(b'RIFF\0\0\0\0WAVEfmt ')
    with pytest.raises(ValueError, match='is not a SoundFont'): check_soundfont(tmp_path / 'fake.sf2')
    with pytest.raises(ValueError, match='is not a SoundFont'): NotesConfig(soundfont=str(tmp_path / 'fake.sf2'))

# --- losses, against direct computations ---------------------------------------------------------------------

def _cos(u, v): return sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))

def _nce_direct(A, B, tau, sign):
    def one_way(X, Y):
        tot = 0.
        for i in range(len(X)):
            logits = [sign * _cos(X[i], Y[j]) / tau for j in range(len(Y))]
            tot += -logits[i] + math.log(sum(math.exp(l) for l in logits))
        return tot / len(X)
    return (one_way(A, B) + one_way(B, A)) / 2

@pytest.mark.parametrize('seed', range(3))
def test_losses_match_direct_computations(seed):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    A, B = a.tolist(), b.tolist()
    assert math.isclose(info_nce(a, b, 0.5).item(), _nce_direct(A, B, 0.5, +1), rel_tol=1e-9)
    assert math.isclose(info_nce_separation(a, b, 0.5).item(), _nce_direct(A, B, 0.5, -1), rel_tol=1e-9)
    cos = [_cos(u, v) for u, v in zip(A, B)]
    assert math.isclose(cosine_similarity_loss(a, b).item(), sum(1 - c for c in cos) / 6, rel_tol=1e-9)
    assert math.isclose(cosine_separation_loss(a, b).item(), sum(c * c for c in cos) / 6, rel_tol=1e-9)
    # VICReg separation: variance and covariance as in VICReg, invariance on standardised latents, negated
    from softfactor.oplas import vicreg_loss
    parts = vicreg_loss(a, b)
    sa, sb = ((z - z.mean(0)) / torch.sqrt(z.var(0) + 1e-4) for z in (a, b))
    expected = 25 * parts['variance'] + parts['covariance'] - 25 * ((sa - sb) ** 2).mean()
    assert math.isclose(vicreg_separation(a, b).item(), expected.item(), rel_tol=1e-9)
    assert math.isclose(vicreg_similarity(a, b).item(), parts['loss'].item(), rel_tol=1e-9)

def test_multiview_encoders_share_weights_across_views():
    torch.manual_seed(0)
    m = MultiViewAE(10, 3, 4, 16)
    x1, x2 = torch.randn(5, 10), torch.randn(5, 10)
    out = m(x1, x2)
    zs1, zp1 = m.encode(x1); zs2, zp2 = m.encode(x2)
    for k, v in dict(zs1=zs1, zp1=zp1, zs2=zs2, zp2=zp2).items(): assert torch.allclose(out[k], v, atol=1e-6), k
    swapped = m(x2, x1)
    assert torch.allclose(swapped['zs1'], out['zs2'], atol=1e-6) and torch.allclose(swapped['zp2'], out['zp1'], atol=1e-6)
    # a loss on view 2 alone trains the same parameters as one on view 1 alone
    out['zs2'].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.shared.parameters())

# --- the command ---------------------------------------------------------------------------------------------

def _cli(*args, cache, check=True, **kw):
    res = subprocess.run([CLI, *args, '--cache', str(cache), '--quiet'],
                         capture_output=True, text=True, env=ENV, **kw)
    if check: assert res.returncode == 0, res.stderr[-3000:]
    return res

SMALL = ('--quick', '--pitch-step', '12', '--steps', '30')

def _strip(rows): return sorted(json.dumps({k: v for k, v in r.items() if k != 'cpu_s'}, sort_keys=True) for r in rows)

def test_sweep_shards_and_a_kill_then_rerun(tmp_path, cache):
    "Two shards together make the whole plan; a run killed halfway and rerun loses nothing, repeats nothing, gives the same rows."
    sharded = tmp_path / 'sharded'
    for s in ('1/2', '0/2'): _cli('sweep', '--out', str(sharded), *SMALL, '--shard', s, cache=cache)
    full = read_rows(sharded / 'rows.jsonl')
    plan = SweepConfig(pitch_lo=48, pitch_hi=72, pitch_step=12, splits=(0,), seeds=(0,), objectives=('both',), alphas=(0.4,)).plan()
    assert sorted(r['key'] for r in full) == sorted(c.key for c in plan) and len(full) == 8
    assert (sharded / 'report.md').exists()  # the shard that completed the sweep wrote the report
    out = tmp_path / 'killed'
    proc = subprocess.Popen([CLI, 'sweep', '--out', str(out), *SMALL, '--cache', str(cache), '--quiet'],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = out / 'rows.jsonl'
    deadline = time.time() + 90
    while time.time() < deadline and len(read_rows(rows)) < 3: time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    partial = read_rows(rows)
    assert 3 <= len(partial) < 8
    with open(rows, 'a') as f: f.write('{"key": "half a li')  # what a kill in mid-write would leave
    _cli('sweep', '--out', str(out), *SMALL, cache=cache)
    after = read_rows(rows)
    assert len(after) == 8 and len({r['key'] for r in after}) == 8  # nothing lost, nothing repeated
    assert _strip(after) == _strip(full)                          # the same numbers as the sharded run
    assert _strip(after[:len(partial)]) == _strip(partial)        # the rows written before the kill are kept as they were

_BAD = """
import io, sys, contextlib
from softfactor.multiview import main
for args in ARGS:
    sys.argv, err = ['softfactor-multiview', *args], io.StringIO()
    with contextlib.redirect_stderr(err):
        try: main(); status = 0
        except SystemExit as e: status = e.code
    print(repr((status, err.getvalue())))
"""

def test_bad_input_is_one_line_and_status_2(tmp_path, cache):
    (tmp_path / 'fake.sf2').write_text('hello')
    (tmp_path / 'mine').mkdir(); (tmp_path / 'mine' / 'notes.txt').write_text('keep me')
    cases = [
        (('sweep', '--out', 'X', '--families', 'infonce,hinge'), "--families must be names from"),
        (('sweep', '--out', 'X', '--objectives', 'separate'), "--objectives must be names from"),
        (('sweep', '--out', 'X', '--alphas', '0,1.5'), "alpha must be <= 1"),
        (('sweep', '--out', 'X', '--alphas', '-0.2'), "alpha must be >= 0"),
        (('sweep', '--out', 'X', '--feature', 'mfcc'), "feature must be one of"),
        (('sweep', '--out', 'X', '--soundfont', '/no/such/file.sf2'), "does not exist"),
        (('sweep', '--out', 'X', '--soundfont', 'fake.sf2'), "is not a SoundFont"),
        (('sweep', '--out', 'X', '--shard', '2/2'), "shard i/n needs 0 <= i < n"),
        (('sweep', '--out', 'X', '--steps', 'many'), "argument --steps"),
        (('sweep',), "--out must be given"),
        (('sweep', '--out', 'mine', *SMALL), "pass --force"),
        (('report', 'no_such_dir'), "holds no sweep"),
        (('train',), "invalid choice"),
    ]
    code = _BAD.replace('ARGS', repr([list(a) + (['--cache', str(cache)] if a[0] == 'sweep' else []) + ['--quiet'] for a, _ in cases]))
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    results = [eval(line) for line in res.stdout.splitlines()]
    for (args, message), (status, err) in zip(cases, results, strict=True):
        assert status == 2, (args, status, err)
        assert err.count('\n') == 1 and err.startswith('softfactor-multiview') and ': error: ' in err and message in err, (args, err)
    assert not (tmp_path / 'X').exists()                            # nothing written before the input was checked
    assert os.listdir(tmp_path / 'mine') == ['notes.txt']          # a folder that is not a sweep is left alone

# --- validation, selection and the nulls of a probe -------------------------------------------------------

def _fake_notes(split, pitches=(48, 60, 72)):
    "A note index over every GM program of the table (no audio): what `make_multiview_data` reads."
    from types import SimpleNamespace
    program = np.repeat(np.array(PROGRAMS), len(pitches)); pitch = np.tile(np.array(pitches), len(PROGRAMS))
    family = np.array([FAMILIES.index(GM_FAMILY[p]) for p in program])
    return SimpleNamespace(program=program, pitch=pitch, family=family, heldout=np.isin(program, heldout_programs(PROGRAMS, 0.25, split)),
                           cfg=SimpleNamespace(split_seed=split))

class _Notes:
    def __init__(self, split): self.__dict__.update(vars(_fake_notes(split)))
    def __len__(self): return len(self.program)

def _synthetic_data(split, seed=0):
    "Features that carry the family and the pitch, plus noise, for the fake notes of one split."
    notes = _Notes(split)
    g = torch.Generator().manual_seed(seed)
    fam, pit = torch.randn(len(FAMILIES), 16, generator=g), torch.randn(200, 16, generator=g)
    x = fam[notes.family] + pit[notes.pitch] + 0.5 * torch.randn(len(notes), 16, generator=g)
    return make_multiview_data(notes, x)

@pytest.mark.parametrize('split', range(3))
def test_validation_split_shares_no_instrument_with_the_test_split(split):
    data = _synthetic_data(split)
    parts = {p: set(getattr(data, f'program_{p}').tolist()) for p in ('train', 'val', 'test')}
    assert parts['val'] & parts['test'] == set()
    assert parts['val'] & parts['train'] == set() and parts['train'] & parts['test'] == set()
    assert parts['test'] == set(heldout_programs(PROGRAMS, 0.25, split))
    assert {FAMILIES[f] for f in data.family_val} == set(FAMILIES)  # every family has validation instruments
    assert data.info['split'] == split

def test_splits_hold_out_different_instruments():
    tests = [set(_synthetic_data(s).program_test.tolist()) for s in range(3)]
    assert tests[0] != tests[1] and tests[1] != tests[2] and tests[0] != tests[2]

def _with_test_labels_permuted(data, seed):
    "The same data with the test notes' labels (family and pitch) shuffled among themselves."
    from dataclasses import replace
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(data.x_test), generator=g).numpy()
    return replace(data, family_test=data.family_test[perm], pitch_test=data.pitch_test[perm])

def test_selection_never_reads_test_labels():
    "The rows of a small sweep, scored once with the true test labels and once with permuted ones: other test numbers, the same choices."
    data = _synthetic_data(0)
    cfgs = [RunConfig(family=f, objective='both', alpha=a, steps=30, probe_epochs=30, hidden=32, shared_dim=8, private_dim=8)
            for f in ('infonce', 'vicreg') for a in (0.4, 0.8)]
    cfgs += [RunConfig(baseline=b, steps=30, probe_epochs=30, hidden=32, shared_dim=8, private_dim=8) for b in ('nce_pitch', 'nce_instrument', 'raw', 'recon')]
    true_rows = [run_one(c, data) for c in cfgs]
    for seed in range(2):
        moved = [run_one(c, _with_test_labels_permuted(data, seed)) for c in cfgs]
        assert [r['acc_family_concat'] for r in moved] != [r['acc_family_concat'] for r in true_rows]  # the test numbers did change
        assert [r['val_acc_family_concat'] for r in moved] == [r['val_acc_family_concat'] for r in true_rows]
        assert select_hybrid(moved) == select_hybrid(true_rows)
        assert select_contrastive(moved) == select_contrastive(true_rows)

@pytest.mark.parametrize('kind', ['linear', 'mlp'])
def test_a_probe_on_shuffled_labels_is_at_its_majority_baseline(kind):
    "Imbalanced classes, features that carry the label: trained on shuffled labels, the probe scores the majority share, not more."
    g = torch.Generator().manual_seed(0)
    y = torch.multinomial(torch.tensor([0.6, 0.2, 0.1, 0.1]), 3000, replacement=True, generator=g)
    x = 3 * torch.nn.functional.one_hot(y, 4).float() + torch.randn(3000, 4, generator=g)
    true = probe_accuracies(x[:2000], y[:2000], {'test': (x[2000:], y[2000:])}, kind)['test']
    null = probe_accuracies(x[:2000], shuffled_labels(y[:2000], 1), {'test': (x[2000:], y[2000:])}, kind)['test']
    assert true > 0.9
    assert abs(null - majority_share(y[2000:])) < 0.03
