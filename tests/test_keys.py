"Keys in a codebook (notebook 10): the key estimator, the circle-of-fifths geometry and its null, the probes' nulls, the codec's run directory."
import json, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from softfactor.pianoroll import Piece
from softfactor.keys import (estimate_keys, transpose_key, key_profiles, cut_windows, window_pch, fifths_distance, fifths_geometry,
                             h1_classes, key_probes, code_usage, mutual_information, KeysConfig, train_codec, split_pieces,
                             TONIC_SHIFTS, LOW, HIGH)

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72, 64, 67, 60, 55]  # a scale, then the tonic triad

def _piece(pitches, tonic=0, mode='major', dur=2, pid='hand-made'):
    notes = np.array([(0, p, i * dur, (i + 1) * dur) for i, p in enumerate(pitches)], dtype=np.int32)
    return Piece(pid, notes, int(notes[:, 3].max()), ('melody',), tonic, mode, 'score')

def _key_of(pitches, shift=0):
    w = cut_windows([_piece([p + shift for p in pitches])], frames=24, min_pitch_classes=1)
    return int(w.key[0])

def test_c_major_is_c_major():
    assert _key_of(C_MAJOR) == 0

def test_up_a_fifth_is_g_major():
    assert _key_of(C_MAJOR, 7) == 7

def test_transposed_windows_get_transposed_keys():
    rng = np.random.default_rng(0)
    pch = rng.random((200, 12))
    keys = estimate_keys(pch)
    for s in (1, 5, 7):
        assert (estimate_keys(np.roll(pch, s, 1)) == transpose_key(keys, s)).all()

def test_flat_histogram_has_no_key():
    assert estimate_keys(np.ones((1, 12)))[0] == -1

def test_estimate_keys_names_bad_shape():
    with pytest.raises(ValueError, match='pch'): estimate_keys(np.ones((3, 11)))

def test_profiles_shape():
    assert key_profiles().shape == (24, 12)

def test_shift_off_the_keyboard_is_skipped():
    w = cut_windows([_piece([HIGH - 2] * 12)], frames=24, shifts=TONIC_SHIFTS, min_pitch_classes=1)
    assert set(w.shift.tolist()) == {s for s in TONIC_SHIFTS if s <= 2}

def test_window_rows_are_the_keyboard():
    w = cut_windows([_piece(C_MAJOR)], frames=24, min_pitch_classes=1)
    assert w.x.shape[1:] == (HIGH - LOW + 1, 24)

def test_split_is_by_piece_and_sized():
    assert split_pieces(100, 0.2, 0).sum() == 20

def _ring(order):
    "12 points on a circle; key `order[i]` sits at angle i·30°."
    pts = np.zeros((12, 2)); ang = np.arange(12) * np.pi / 6
    pts[order] = np.stack([np.cos(ang), np.sin(ang)], 1)
    return pts

FIFTHS_ORDER = (np.arange(12) * 7) % 12  # C G D A E B F# C# Ab Eb Bb F

def test_fifths_distance_of_a_fifth_and_a_tritone():
    assert fifths_distance(0, 7) == 1 and fifths_distance(0, 6) == 6

def test_perfect_ring_rho():
    assert fifths_geometry(_ring(FIFTHS_ORDER), n_perm=199)['rho'] == pytest.approx(1.0, abs=1e-9)

def test_perfect_ring_p():
    assert fifths_geometry(_ring(FIFTHS_ORDER), n_perm=199)['p'] == pytest.approx(1 / 200)

def test_perfect_ring_fifth_neighbours():
    assert fifths_geometry(_ring(FIFTHS_ORDER), n_perm=19)['fifth_neighbours'] == 1.0

def test_perfect_ring_tritone_farthest():
    g = fifths_geometry(_ring(FIFTHS_ORDER), n_perm=19)
    assert g['dist_tritone'] > max(g['dist_fifth'], g['dist_minor_third'], g['dist_major_third'])

def test_shuffled_ring_p():
    order = np.random.default_rng(3).permutation(FIFTHS_ORDER)
    assert fifths_geometry(_ring(order), n_perm=199)['p'] > 0.05

def test_chromatic_ring_rho_is_not_one():
    assert fifths_geometry(_ring(np.arange(12)), n_perm=19)['rho'] < 0.5

def test_ring_has_one_long_lived_loop():
    assert h1_classes(_ring(FIFTHS_ORDER))['long_lived'] == 1

def test_cloud_has_no_long_lived_loop():
    pts = np.random.default_rng(0).normal(size=(12, 10))
    assert h1_classes(pts)['long_lived'] <= 1

def test_probe_on_shuffled_labels_is_at_chance():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(1200, 12)), rng.integers(0, 24, 1200)
    r = key_probes(X[:800], y[:800], X[800:], y[800:], mlp=False)
    assert r['shuffled'] < 1 / 24 + 0.04

def test_probe_finds_a_planted_key():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 24, 1200); X = np.eye(24)[y] + 0.1 * rng.normal(size=(1200, 24))
    assert key_probes(X[:800], y[:800], X[800:], y[800:], mlp=False)['linear'] > 0.95

def test_uniform_code_use_perplexity():
    assert code_usage(np.arange(4).repeat(10).reshape(-1, 2), 16)['perplexity'] == pytest.approx(4.0)

def test_dead_codes():
    assert code_usage(np.arange(4).repeat(10).reshape(-1, 2), 16)['dead'] == 12

def test_codes_that_are_the_key_carry_all_its_information():
    keys = np.arange(24).repeat(50)
    assert mutual_information(keys[:, None], keys, 24)['mi_bits'] == pytest.approx(np.log2(24))

def test_config_names_bad_frames():
    with pytest.raises(ValueError, match='frames'): KeysConfig(frames=12)

def _pieces(n=8):
    rng = np.random.default_rng(0)
    return [_piece(list(60 + rng.integers(-7, 8, 24)), pid=f"p{i}") for i in range(n)]

def test_resumed_run_ends_with_the_same_weights(tmp_path):
    from softfactor.keys import cut_windows as cw
    ps = _pieces()
    windows = {'train': cw(ps[:6], 16, shifts=TONIC_SHIFTS), 'eval': cw(ps[6:], 16, shifts=TONIC_SHIFTS)}
    cfg = KeysConfig(frames=16, codebook_size=8, dim=8, hidden=16, steps=12, batch_size=8, ckpt_every=4)
    whole, _ = train_codec(cfg, windows, progress=False)
    train_codec(cfg, windows, out=tmp_path, progress=False, stop_at=6)
    resumed, _ = train_codec(cfg, windows, out=tmp_path, resume=True, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))

def test_run_is_not_overwritten(tmp_path):
    ps = _pieces()
    windows = {'train': cut_windows(ps[:6], 16, shifts=TONIC_SHIFTS), 'eval': cut_windows(ps[6:], 16, shifts=TONIC_SHIFTS)}
    cfg = KeysConfig(frames=16, codebook_size=8, dim=8, hidden=16, steps=2, batch_size=8)
    train_codec(cfg, windows, out=tmp_path, progress=False)
    with pytest.raises(FileExistsError, match='out'): train_codec(cfg, windows, out=tmp_path, progress=False)

def _cli(*args):
    code = "import sys; from softfactor.keys import main; sys.argv = ['softfactor-keys', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True)

def test_cli_report_without_probe_is_one_line(tmp_path):
    r = _cli('report', '--run', str(tmp_path))
    assert (r.returncode, len(r.stderr.strip().splitlines())) == (2, 1)

def test_cli_bad_option_value(tmp_path):
    r = _cli('train', '--out', str(tmp_path / 'x'), '--frames', '12')
    assert (r.returncode, 'frames' in r.stderr, 'Traceback' in r.stderr) == (2, True, False)

def test_module_imports_in_a_fresh_process():
    r = subprocess.run([sys.executable, '-c', 'import softfactor.keys as k; print(k.KeysConfig().codebook_size)'], capture_output=True, text=True)
    assert r.stdout.strip() == '512'

# the window cache of a MIDI folder: streamed, sharded, resumable

def _midi_folder(root, n=12, seed=0):
    "n small MIDI files (4 bars of notes from a C major scale) in two sub-folders."
    from softfactor.pianoroll import write_midi
    rng = np.random.default_rng(seed)
    for i in range(n):
        notes = [(s / 4, 0.5, int(p)) for s, p in zip(np.sort(rng.integers(0, 64, 40)), 48 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], 40))]
        write_midi(root / f"{i % 2}" / f"{i:03d}.mid", [('piano', 0, False, notes)])
    return root

def _same_windows(a, b):
    return len(a) == len(b) and a.ids == b.ids and (a.piece == b.piece).all() and (a.key == b.key).all() and (a.written == b.written).all() and torch.equal(a.x, b.x)

def test_cache_resumed_equals_uninterrupted(tmp_path):
    from softfactor.keys import build_window_cache, read_window_cache
    midi = _midi_folder(tmp_path / 'midi')
    build_window_cache(midi, tmp_path / 'whole', chunk_files=3)
    build_window_cache(midi, tmp_path / 'resumed', chunk_files=3, stop_after=5)
    build_window_cache(midi, tmp_path / 'resumed', chunk_files=3)
    assert _same_windows(read_window_cache(tmp_path / 'whole'), read_window_cache(tmp_path / 'resumed'))

def test_cache_rerun_does_only_the_rest(tmp_path):
    from softfactor.keys import build_window_cache
    midi = _midi_folder(tmp_path / 'midi')
    build_window_cache(midi, tmp_path / 'c', chunk_files=3, stop_after=5)
    assert build_window_cache(midi, tmp_path / 'c', chunk_files=3)['done_now'] == 12 - 5

def test_cache_survives_a_line_cut_short(tmp_path):
    from softfactor.keys import build_window_cache, read_window_cache
    midi = _midi_folder(tmp_path / 'midi')
    build_window_cache(midi, tmp_path / 'whole', chunk_files=3)
    build_window_cache(midi, tmp_path / 'cut', chunk_files=3, stop_after=6)
    man = tmp_path / 'cut' / 'shard-0000-of-0001' / 'manifest.jsonl'
    man.write_text(man.read_text()[:-7])  # a kill in the middle of writing the last line
    build_window_cache(midi, tmp_path / 'cut', chunk_files=3)
    assert _same_windows(read_window_cache(tmp_path / 'whole'), read_window_cache(tmp_path / 'cut'))

def _shard_files(out, i, n):
    return {json.loads(l)['file'] for l in (out / f"shard-{i:04d}-of-{n:04d}" / 'manifest.jsonl').read_text().splitlines()}

def test_shards_do_not_overlap(tmp_path):
    from softfactor.keys import build_window_cache
    midi = _midi_folder(tmp_path / 'midi', n=20)
    for i in range(3): build_window_cache(midi, tmp_path / 'c', shard=f"{i}/3")
    s = [_shard_files(tmp_path / 'c', i, 3) for i in range(3)]
    assert len(s[0]) + len(s[1]) + len(s[2]) == len(s[0] | s[1] | s[2])

def test_shards_cover_every_file(tmp_path):
    from softfactor.keys import build_window_cache
    midi = _midi_folder(tmp_path / 'midi', n=20)
    for i in range(3): build_window_cache(midi, tmp_path / 'c', shard=f"{i}/3")
    assert set().union(*(_shard_files(tmp_path / 'c', i, 3) for i in range(3))) == {f"{i % 2}/{i:03d}.mid" for i in range(20)}

def test_shards_read_back_as_one_build(tmp_path):
    from softfactor.keys import build_window_cache, read_window_cache
    midi = _midi_folder(tmp_path / 'midi', n=20)
    build_window_cache(midi, tmp_path / 'whole')
    for i in range(2): build_window_cache(midi, tmp_path / 'c', shard=f"{i}/2")
    assert _same_windows(read_window_cache(tmp_path / 'whole'), read_window_cache(tmp_path / 'c'))

def test_shard_of_is_a_fixed_hash():
    from softfactor.keys import shard_of
    assert [shard_of(f"{i}.mid", 4) for i in range(6)] == [2, 1, 0, 1, 2, 3]

def test_missing_shard_is_named(tmp_path):
    from softfactor.keys import build_window_cache, read_window_cache
    midi = _midi_folder(tmp_path / 'midi', n=20)
    build_window_cache(midi, tmp_path / 'c', shard='0/2')
    with pytest.warns(UserWarning, match='shard.*1 of 2'): read_window_cache(tmp_path / 'c')

def test_bad_file_is_skipped_and_named(tmp_path):
    from softfactor.keys import build_window_cache
    midi = _midi_folder(tmp_path / 'midi')
    (midi / '0' / 'broken.mid').write_bytes(b'MThd and nothing else')
    with pytest.warns(UserWarning, match=r'0/broken\.mid \(unreadable'): build_window_cache(midi, tmp_path / 'c')

def test_bad_file_is_recorded_and_not_retried(tmp_path):
    from softfactor.keys import build_window_cache
    midi = _midi_folder(tmp_path / 'midi')
    (midi / '0' / 'broken.mid').write_bytes(b'MThd and nothing else')
    with pytest.warns(UserWarning): build_window_cache(midi, tmp_path / 'c')
    assert build_window_cache(midi, tmp_path / 'c')['skipped'] == 1

def test_cache_of_an_empty_folder_names_path(tmp_path):
    from softfactor.keys import build_window_cache
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='^path: no MIDI files'): build_window_cache(tmp_path / 'empty', tmp_path / 'c')

def test_cache_with_no_window_names_path(tmp_path):
    from softfactor.keys import build_window_cache
    from softfactor.pianoroll import write_midi
    write_midi(tmp_path / 'midi' / 'drums.mid', [('drums', 0, True, [(b / 2, 0.25, 36) for b in range(32)])])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match='^path: none of the 1 MIDI files'):
        build_window_cache(tmp_path / 'midi', tmp_path / 'c')

def test_bad_shard_is_named(tmp_path):
    from softfactor.keys import build_window_cache
    with pytest.raises(ValueError, match='^shard'): build_window_cache(_midi_folder(tmp_path / 'midi'), tmp_path / 'c', shard='2/2')

def test_other_settings_in_the_same_cache_are_refused(tmp_path):
    from softfactor.keys import build_window_cache
    midi = _midi_folder(tmp_path / 'midi')
    build_window_cache(midi, tmp_path / 'c')
    with pytest.raises(ValueError, match='^out'): build_window_cache(midi, tmp_path / 'c', frames=16)

def test_cli_cache_of_an_empty_folder_is_one_line(tmp_path):
    (tmp_path / 'empty').mkdir()
    r = _cli('cache', str(tmp_path / 'empty'), '--out', str(tmp_path / 'c'))
    assert (r.returncode, len(r.stderr.strip().splitlines()), 'path' in r.stderr) == (2, 1, True)

def test_cli_cache_builds_a_shard(tmp_path):
    r = _cli('cache', str(_midi_folder(tmp_path / 'midi')), '--out', str(tmp_path / 'c'), '--shard', '1/2')
    assert (r.returncode, (tmp_path / 'c' / 'shard-0001-of-0002' / 'manifest.jsonl').is_file()) == (0, True)

def test_cache_of_a_relative_folder(tmp_path, monkeypatch):
    from softfactor.keys import build_window_cache
    _midi_folder(tmp_path / 'midi'); monkeypatch.chdir(tmp_path)
    assert build_window_cache('midi', 'c')['skipped'] == 0

def test_cli_cache_names_a_bad_file_in_one_line(tmp_path):
    midi = _midi_folder(tmp_path / 'midi')
    (midi / '0' / 'broken.mid').write_bytes(b'MThd and nothing else')
    r = _cli('cache', str(midi), '--out', str(tmp_path / 'c'))
    assert (r.returncode, len(r.stderr.strip().splitlines()), '0/broken.mid' in r.stderr) == (0, 1, True)

def _window_set(w):
    return sorted((int(p), int(s), int(k), w.x[i].numpy().tobytes()) for i, (p, s, k) in enumerate(zip(w.piece, w.shift, w.key)))

def test_transposed_cached_windows_match_cut_windows():
    from softfactor.keys import transpose_windows
    ps = _pieces(4)
    assert _window_set(transpose_windows(cut_windows(ps, 16))) == _window_set(cut_windows(ps, 16, shifts=TONIC_SHIFTS))

def test_transposed_cached_windows_get_transposed_keys():
    from softfactor.keys import transpose_windows
    w = cut_windows(_pieces(4), 16)
    up = transpose_windows(w, (7,))
    assert (up.key == estimate_keys(window_pch(up.x))).all()

ENCODER08 = Path(__file__).resolve().parent.parent / 'nbs' / 'data' / 'pianoroll_encoders' / 'chorales-seed0-300.pt'

@pytest.fixture(scope='module')
def enc08_row(tmp_path_factory):
    from softfactor.keys import keys_sweep
    rows = tmp_path_factory.mktemp('enc08') / 'rows.jsonl'
    keys_sweep(rows=str(rows), seeds=(0,), variants=('enc08',), quick=True, encoder=str(ENCODER08), given=dict(max_pieces=30))
    return json.loads(rows.read_text().splitlines()[0])

def test_enc08_row_has_latent_probe(enc08_row):
    assert 'latent_linear' in enc08_row

def test_enc08_row_has_fifths_rho(enc08_row):
    assert 'rho' in enc08_row

def test_enc08_row_has_h1(enc08_row):
    assert 'h1_long_lived' in enc08_row

def test_enc08_row_has_no_code_probe(enc08_row):
    assert 'codes_linear' not in enc08_row

def test_enc08_row_has_no_code_usage(enc08_row):
    assert 'perplexity' not in enc08_row

def test_enc08_latents_are_16_wide():
    from softfactor.keys import pianoroll_encoder, encoder_latents
    assert encoder_latents(pianoroll_encoder(ENCODER08), torch.zeros(3, HIGH - LOW + 1, 32, dtype=torch.bool)).shape == (3, 16)

def test_missing_encoder_is_named(tmp_path):
    from softfactor.keys import pianoroll_encoder
    with pytest.raises(FileNotFoundError, match='encoder'): pianoroll_encoder(tmp_path / 'none.pt')

def test_sweep_row_of_another_corpus_is_not_taken_as_done(tmp_path):
    from softfactor.keys import keys_sweep
    rows = tmp_path / 'rows.jsonl'
    rows.write_text(json.dumps(dict(variant='enc08', codebook_size=16, seed=0, data='oneills')) + '\n')
    keys_sweep(rows=str(rows), seeds=(0,), variants=('enc08',), quick=True, encoder=str(ENCODER08), given=dict(max_pieces=30))
    assert len(rows.read_text().splitlines()) == 2
