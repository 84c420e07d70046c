"Tests of softfactor.oplas_music: chorale voices as stems, rendered stems, chroma transpositions and the fifths metrics, and the new softfactor-oplas subcommands end to end."
import json, math, os, subprocess, sys
import numpy as np
import pytest, torch
from hypothesis import given, settings, strategies as st
from softfactor.oplas import FiLMR
from softfactor.pianoroll import Piece, PianoRollSource
from softfactor.oplas_music import (VOICES, ChoraleVoices, draw_stems, excerpt_notes, excerpt_pool, render_voice, render_stems,
                                    melpower_features, transpose_fifths, chroma_rolls, draw_chroma, fifths_metrics, DFTChroma,
                                    FifthsConfig, RollStemsConfig, AudioStemsConfig, ASSIGNMENTS, shuffle_rows, logmel_mean_features,
                                    FlatRolls, untrained_encoder, FIFTHS_STEPS, train_fifths)
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / 'nbs' / 'data'
NOTEBOOK = Path(__file__).resolve().parents[1] / 'nbs' / '09_oplas_music.ipynb'

torch.set_num_threads(1)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
PROPS = settings(max_examples=30, deadline=None)

@pytest.fixture(scope='module')
def chorales():
    return PianoRollSource('chorales', max_pieces=24)

@pytest.fixture(scope='module')
def voices(chorales):
    return ChoraleVoices(chorales)

def _transpose_by_hand(x, k):
    "Reference: pitch class c of the result is pitch class c - 7k of x, row by row."
    out = torch.empty_like(x)
    for c in range(12): out[..., c, :] = x[..., (c - 7 * k) % 12, :]
    return out

@PROPS
@given(seed=st.integers(0, 2**31 - 1), k1=st.integers(-30, 30), k2=st.integers(-30, 30), frames=st.integers(1, 8))
def test_transpositions_by_fifths_form_a_cycle_of_twelve(seed, k1, k2, frames):
    x = torch.rand(3, 12, frames, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(transpose_fifths(x, k1), _transpose_by_hand(x, k1))
    assert torch.equal(transpose_fifths(transpose_fifths(x, k1), k2), transpose_fifths(x, k1 + k2))
    assert torch.equal(transpose_fifths(x, 12), x)
    ks = torch.tensor([k1, k2, k1 + k2])
    assert torch.equal(transpose_fifths(x, ks), torch.stack([_transpose_by_hand(x[i], int(k)) for i, k in enumerate(ks)]))

def test_a_fifth_up_moves_c_major_to_g_major():
    c = torch.zeros(12, 1); c[[0, 4, 7]] = 1
    g = torch.zeros(12, 1); g[[7, 11, 2]] = 1
    assert torch.equal(transpose_fifths(c, 1), g)

def _rotation(theta):
    T = FiLMR(2, theta=theta)
    with torch.no_grad(): T.u.copy_(torch.tensor([1., 0.])); T.v.copy_(torch.tensor([0., 1.]))
    return T.eval()

def test_the_closed_form_pair_is_exact_and_the_metrics_say_so():
    x = (torch.rand(200, 12, 4, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    x = x[DFTChroma(4, 5)(x.flatten(1)).norm(dim=1) > 0.5]       # patches whose ring has a radius
    exact = fifths_metrics(DFTChroma(4, 5), _rotation(math.pi / 6), x)
    assert exact['step_accuracy'] == [1.0] * 12
    assert exact['closure_error'] < 1e-4
    assert exact['one_step_error'] < 1e-4
    wrong = fifths_metrics(DFTChroma(4, 5), _rotation(-math.pi / 6), x)  # closes, but only k = 6 and 12 are right
    assert wrong['closure_error'] < 1e-4
    assert [k for k, a in enumerate(wrong['step_accuracy'], 1) if a > 0.5] == [6, 12]
    assert len(exact['pca_rings']) == 6
    assert len(exact['pca_orbit']) == 13

def test_fifths_metrics_rejects_bad_patches():
    with pytest.raises(ValueError, match='x must be a'): fifths_metrics(DFTChroma(4, 5), _rotation(0.5), torch.zeros(3, 11, 4))

def test_chroma_patches_come_from_the_split_and_have_twelve_keys(chorales):
    chroma = chroma_rolls(chorales)
    assert chroma.shape == (12, chorales.rolls.shape[1])
    x, piece = draw_chroma(chorales, chroma, 200, 'eval', torch.Generator().manual_seed(1))
    assert set(piece.tolist()) <= set(chorales.split_ids['eval'].tolist())
    keys = torch.stack([transpose_fifths(x, j) for j in range(12)], 1).flatten(2)   # (n, 12, 12 * T)
    assert not any((keys[:, i] == keys[:, j]).all(1).any() for i in range(12) for j in range(i + 1, 12))

def test_the_union_of_the_voice_stems_is_the_window_of_the_piece(chorales, voices):
    stems, mask = draw_stems(voices, 128, torch.Generator().manual_seed(0), 'eval')
    assert stems.shape == (128, 4, 1, chorales.P, chorales.T)
    assert bool((mask.sum(1) >= 2).all())
    base = chorales.base(64, torch.Generator().manual_seed(2))
    base = base[torch.tensor([len(chorales.pieces[i].parts) == 4 for i in base[:, 0].tolist()])]
    zero = torch.zeros(len(base), 1, dtype=torch.long)
    assert torch.equal(voices.windows(base).amax(1), chorales.views(base, zero, zero)[:, 0])
    with pytest.raises(TypeError, match='source must be a PianoRollSource'): ChoraleVoices('chorales')

def test_excerpt_notes_are_clipped_to_the_excerpt():
    piece = Piece('toy', np.array([[0, 60, 0, 8], [0, 62, 8, 12], [1, 48, 4, 40], [0, 64, 30, 34]], dtype=np.int32), 40,
                  VOICES[:2] + ('x', 'y'))
    assert excerpt_notes(piece, 0, 6, 8).tolist() == [[60, 0, 2], [62, 2, 6]]
    assert excerpt_notes(piece, 1, 6, 8).tolist() == [[48, 0, 8]]
    assert excerpt_notes(piece, 0, 34, 4).tolist() == []

def test_rendered_voices_are_reproducible_and_the_mix_is_their_sum(chorales, voices):
    from softfactor.notes import NoteRenderer, NotesConfig
    r = NoteRenderer(NotesConfig())
    i, left = excerpt_pool(voices, 'eval')[0].tolist()
    stems = render_stems(r, chorales.pieces[i], left, ASSIGNMENTS['strings'], frames=16)
    assert stems.shape == (4, 32000)
    assert bool((stems.abs().amax(1) > 1e-3).all())                  # every voice sounds
    r.synth.noteon(0, 60, 100)                                       # something left sounding
    assert torch.equal(render_stems(r, chorales.pieces[i], left, ASSIGNMENTS['strings'], frames=16), stems)
    from softfactor.notes import logmel_features
    rel = lambda f: ((f[:4].sum(0) - f[4]).norm() / f[4].norm()).item()
    clips = torch.cat([stems, stems.sum(0, keepdim=True)])
    assert rel(melpower_features(clips)) < 0.6                      # power nearly adds up (cross terms aside)...
    assert rel(logmel_features(clips)) > 2                          # ...dB does not
    with pytest.raises(ValueError, match='program 128'): render_voice(r, 128, np.zeros((0, 3), np.int64), 4, 0.125)

def test_configs_check_their_settings():
    with pytest.raises(ValueError, match='operators must be'): FifthsConfig(operators=('rotor',))
    with pytest.raises(ValueError, match='assignments must be'): AudioStemsConfig(assignments=('brass',))
    with pytest.raises(ValueError, match='eval_batch must be <= n_eval'): RollStemsConfig(n_eval=100)

def _run(*args):
    return subprocess.run(['softfactor-oplas', *args], capture_output=True, text=True, env=ENV, timeout=300)

def test_softfactor_oplas_keeps_its_commands_and_gains_three():
    r = _run('--help')
    assert r.returncode == 0
    for name in ('mixing', 'stargate', 'roll-stems', 'audio-stems', 'fifths'): assert name in r.stdout, name

def test_fifths_end_to_end_with_the_installed_command(tmp_path):
    out = tmp_path / 'runs'
    r = _run('fifths', '--out', str(out), '--steps', '30', '--seeds', '0', '--n-train', '300', '--n-eval', '12',
             '--operators', 'expm,matrix', '--quiet')
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ['fifths.json', 'fifths_curves.png', 'fifths_rings.png']
    res = json.loads((out / 'fifths.json').read_text())
    assert list(res['summary']) == ['expm', 'matrix']
    assert len(res['runs'][0]['metrics']['step_accuracy']) == 12
    again = _run('fifths', '--out', str(out))                       # never replaced without --force
    assert again.returncode == 2
    assert again.stderr.strip().endswith('fifths.json exists: pass --force to replace it')
    assert len(again.stderr.strip().splitlines()) == 1

@pytest.mark.parametrize('args, message', [
    (('fifths', '--operators', 'rotor'), '--operators must be a non-empty selection'),
    (('audio-stems', '--features', 'mfcc'), '--features must be a non-empty selection'),
    (('roll-stems', '--encoder', '/no/such/run'), 'encoder: /no/such/run does not exist'),
    (('roll-stems', '--min-stems', '5'), '--min-stems must be <= 4'),
])
def test_bad_input_is_one_line_and_exit_status_2(args, message, tmp_path):
    r = _run(*args, '--out', str(tmp_path / 'x'))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / 'x').exists()

def test_the_module_stands_alone_in_a_fresh_process():
    code = "from softfactor import run_fifths, run_roll_stems, run_audio_stems, ChoraleVoices; import softfactor.oplas_music as m; print(m.main.__module__)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == 'softfactor.oplas_music'

def test_a_semitone_step_is_a_shift_by_one_and_its_closed_form_turns_30_degrees():
    x = (torch.rand(200, 12, 4, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    assert torch.equal(transpose_fifths(x, 5, semitones=1), x.roll(5, dims=-2))
    assert torch.equal(transpose_fifths(x, torch.full((200,), 5), semitones=1), x.roll(5, dims=-2))
    x = x[DFTChroma(4, 1)(x.flatten(1)).norm(dim=1) > 0.5]
    exact = fifths_metrics(DFTChroma(4, 1), _rotation(-math.pi / 6), x, semitones=1)  # order 1 turns -30° a semitone
    assert exact['step_accuracy'] == [1.0] * 12
    assert exact['closure_error'] < 1e-4

def test_shuffled_rows_are_a_permutation_of_each_patch_and_not_a_transposition():
    x = torch.rand(64, 12, 3, generator=torch.Generator().manual_seed(0))
    y = shuffle_rows(x, torch.Generator().manual_seed(1))
    assert torch.equal(y.sort(1).values, x.sort(1).values)           # the same rows...
    shifts = torch.stack([(transpose_fifths(x, k, 1) == y).flatten(1).all(1) for k in range(12)], 1)
    assert not bool(shifts.any(1).all())                              # ...not in a cyclic order
    assert not torch.equal(shuffle_rows(x, torch.Generator().manual_seed(1)), shuffle_rows(x, torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match='x must be a'): shuffle_rows(torch.zeros(3, 11, 4))

def test_fifths_config_names_a_bad_step():
    assert set(FIFTHS_STEPS) == {'fifth', 'semitone', 'shuffled'}
    with pytest.raises(ValueError, match='step must be one of'): FifthsConfig(step='tritone')

def test_train_fifths_records_the_step_and_filmr_start_angle():
    x = (torch.rand(300, 12, 4, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    r = train_fifths('givens', x[:200], x[200:], FifthsConfig(steps=3, n_train=200, n_eval=100, step='semitone', theta_init=0.2), 0)
    assert r['step'] == 'semitone'
    assert abs(r['metrics']['theta_init_steps'] - 0.2 * 12 / (2 * math.pi)) < 1e-6

def test_logmel_mean_is_logmel_without_its_std():
    from softfactor.notes import logmel_features
    audio = torch.randn(3, 16000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(logmel_mean_features(audio), logmel_features(audio)[:, :256], atol=1e-4)
    with pytest.raises(ValueError, match='audio must have shape'): logmel_mean_features(audio[0])

def test_roll_controls_flatten_the_rolls_and_rebuild_the_architecture_untrained():
    from dataclasses import asdict
    from softfactor.training import TrainConfig
    x = torch.rand(5, 1, 16, 16)
    assert torch.equal(FlatRolls()(x), x.flatten(1))
    src = PianoRollSource('chorales', max_pieces=4)
    info = dict(source='untrained', config=asdict(TrainConfig(data='chorales', device='cpu')))
    a, b, c = untrained_encoder(info, 0, src), untrained_encoder(info, 0, src), untrained_encoder(info, 1, src)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))    # the seed fixes the weights
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
    assert a(x).shape == (5, 16)
    with pytest.raises(ValueError, match='seed must be >= 0'): untrained_encoder(info, -1, src)

def _rows(name): return [json.loads(l) for l in (DATA / name).read_text().splitlines() if l.strip()]

def test_the_committed_fifths_rows_hold_every_run_and_the_shuffled_control_is_at_chance():
    rows = _rows('oplas_music_fifths.jsonl')
    runs = {(r['step'], r['operator'], r['seed']) for r in rows}
    assert len(runs) == len(rows)                                       # no run twice
    assert {(o, s) for st, o, s in runs if st == 'fifth'} == {(o, s) for o in ('givens', 'expm', 'matrix', 'mlp') for s in range(5)}
    assert {(o, s) for st, o, s in runs if st == 'shuffled'} == {(o, s) for o in ('givens', 'matrix') for s in range(3)}
    shuffled = [r['metrics']['mean_accuracy'] for r in rows if r['step'] == 'shuffled']
    assert max(shuffled) < 0.2                                          # chance is 1/12
    assert min(r['metrics']['mean_accuracy'] for r in rows if r['step'] == 'fifth') > 0.95
    assert all('theta_init_steps' in r['metrics'] for r in rows if r['operator'] in ('givens', 'expm'))

def test_the_committed_stem_rows_hold_every_run():
    roll = _rows('oplas_music_roll_controls.jsonl')
    assert sorted((r['encoder'], r['seed']) for r in roll) == sorted((e, s) for e in ('untrained', 'raw rolls') for s in range(3))
    audio = _rows('oplas_music_audio.jsonl')
    assert sorted((r['feature'], r['seed']) for r in audio) == sorted((f, s) for f in ('logmel', 'logmel_mean', 'melpower') for s in range(3))
    aisfx = json.loads((DATA / 'oplas_music_aisfx.json').read_text())
    assert aisfx['command'].startswith('softfactor-oplas audio-stems')
    assert set(aisfx['summary']) == {'winds/logmel', 'winds/aisfx'}

def test_the_notebook_reads_nothing_outside_the_repository():
    import re
    src = '\n'.join(''.join(c['source']) for c in json.loads(NOTEBOOK.read_text())['cells'] if c['cell_type'] == 'code')
    assert '../runs' not in src and "Path('runs" not in src
    for name in set(re.findall(r"(oplas_music_[a-z_]+\.jsonl?)", src)): assert (DATA / name).exists(), name
