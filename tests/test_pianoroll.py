"""Real piano rolls: MIDI files with known notes, a folder of bad files, the cache (corrupt, stale, concurrent),
the shift law of `PianoRollSource` (property tests), its splits and its bad input. Fast: small data only."""
import json, subprocess, sys, warnings
import numpy as np
import pytest, torch
from hypothesis import given, settings, strategies as st
from softfactor.blobs import shift_batch
from softfactor.pianoroll import (Piece, PianoRollSource, load_corpus, load_midi_folder, load_pieces, midi_to_piece,
                                  write_midi, cache_folder, CACHE_FORMAT)

settings.register_profile("pianoroll", max_examples=25, deadline=None)

def test_module_imports_alone():
    "The exported module stands alone (no dependence on a notebook cell), in a fresh process."
    code = "import softfactor.pianoroll as p; assert p.PianoRollSource and p.load_corpus and p.load_midi_folder"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0

def _known_notes():
    "(tracks for write_midi, expected (pitch, first frame, last frame + 1) per kept track) at 16th-note frames."
    tracks = [("lead", 0, False, [(0, 1, 60), (1, 0.5, 62), (1.5, 0.25, 64), (2, 2, 67)]),
              ("drums", 0, True, [(0, 0.25, 36), (0.5, 0.25, 42)]),
              ("bass", 32, False, [(0, 2, 36), (2, 2, 43)]),
              ("chord", 48, False, [(0.75, 1.25, 48), (0.75, 1.25, 52), (0.75, 1.25, 55)])]
    expected = [[(60, 0, 4), (62, 4, 6), (64, 6, 7), (67, 8, 16)], [(36, 0, 8), (43, 8, 16)], [(48, 3, 8), (52, 3, 8), (55, 3, 8)]]
    return tracks, expected

def test_midi_roll_has_exactly_the_written_cells(tmp_path):
    tracks, expected = _known_notes()
    piece = midi_to_piece(write_midi(tmp_path / "k.mid", tracks, tpq=96, key=(2, 0), time_sig=(4, 4)))
    assert piece.parts == ("lead", "bass", "chord")  # the drum track is gone
    assert (piece.key, piece.key_from, piece.time_sig, piece.n_frames) == ("D major", "midi", "4/4", 16)
    rolls = piece.rolls()
    for part, notes in enumerate(expected):
        want = torch.zeros(128, 16, dtype=torch.bool)
        for pitch, a, b in notes: want[pitch, a:b] = True
        assert torch.equal(rolls[part], want), part
    assert int(piece.roll().sum()) == sum(b - a for notes in expected for _, a, b in notes)

def test_midi_starts_at_first_note_and_short_notes_keep_a_frame(tmp_path):
    piece = midi_to_piece(write_midi(tmp_path / "s.mid", [("p", 0, False, [(2, 0.05, 70), (3, 1, 71)])]))
    assert piece.notes[:, 2:].tolist() == [[0, 1], [4, 8]]  # 2 quarters of silence dropped; a 1/80-note gets one frame

def _bad_folder(root):
    tracks, _ = _known_notes()
    write_midi(root / "good1.mid", tracks)
    (root / "deeper").mkdir()
    write_midi(root / "deeper" / "good2.midi", [("p", 0, False, [(0, 1, 72)])])
    (root / "truncated.mid").write_bytes((root / "good1.mid").read_bytes()[:40])
    (root / "text.mid").write_text("not midi at all\n")
    (root / "empty.mid").write_bytes(b"")
    write_midi(root / "silent.mid", [("p", 0, False, [])])
    (root / "notes.txt").write_text("ignored: not a MIDI suffix")
    return root

def test_bad_files_are_skipped_and_named_in_one_warning(tmp_path):
    folder = _bad_folder(tmp_path / "midi")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pieces = load_midi_folder(folder, cache_dir=tmp_path / "cache")
    assert [p.id for p in pieces] == ["deeper/good2.midi", "good1.mid"]
    assert len(w) == 1
    msg = str(w[0].message)
    assert "skipped 4 of 6" in msg
    for name in ("truncated.mid (unreadable", "text.mid (unreadable", "empty.mid (unreadable", "silent.mid (no notes)"):
        assert name in msg, name

def test_midi_cache_notices_new_files(tmp_path):
    folder, cache = tmp_path / "midi", tmp_path / "cache"
    folder.mkdir()
    write_midi(folder / "a.mid", [("p", 0, False, [(0, 1, 60)])])
    assert len(load_midi_folder(folder, cache_dir=cache)) == 1
    write_midi(folder / "b.mid", [("p", 0, False, [(0, 1, 62)])])
    with pytest.warns(UserWarning, match="is stale"):
        assert [p.id for p in load_midi_folder(folder, cache_dir=cache)] == ["a.mid", "b.mid"]

@pytest.mark.parametrize("make, msg", [
    (lambda p: p / "missing", "path: no such folder"),
    (lambda p: p, "path: no MIDI files"),
])
def test_bad_folders(tmp_path, make, msg):
    with pytest.raises(ValueError, match=msg): load_midi_folder(make(tmp_path))

def test_chorales_cache_round_trip_corrupt_and_stale(tmp_path):
    first = load_corpus("chorales", max_pieces=3, cache_dir=tmp_path)
    assert [p.parts for p in first] == [("Soprano", "Alto", "Tenor", "Bass")] * 3
    (f,) = (tmp_path / "pianoroll").iterdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a valid cache loads silently
        again = load_corpus("chorales", max_pieces=3, cache_dir=tmp_path)
    assert all(np.array_equal(a.notes, b.notes) and a.key == b.key for a, b in zip(first, again))
    f.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.warns(UserWarning, match="is corrupt"): load_corpus("chorales", max_pieces=3, cache_dir=tmp_path)
    with np.load(f, allow_pickle=False) as z: arrays = dict(z)
    meta = json.loads(str(arrays["meta"][()]))
    meta["key"]["inputs"]["music21"] = "0.0"  # made by another music21: the checksum still holds, the key does not
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    from softfactor.pianoroll import array_digest
    arrays["checksum"] = np.array(array_digest(*[arrays[k] for k in ("notes", "counts", "n_frames", "tonic")], str(arrays["meta"][()]).encode()))
    with open(f, "wb") as fh: np.savez(fh, **arrays)
    with pytest.warns(UserWarning, match="is stale"): load_corpus("chorales", max_pieces=3, cache_dir=tmp_path)
    with np.load(f, allow_pickle=False) as z:
        assert json.loads(str(z["meta"][()]))["key"]["format"] == CACHE_FORMAT

def test_cache_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTFACTOR_CACHE", str(tmp_path / "env"))
    assert cache_folder() == tmp_path / "env"
    assert cache_folder(tmp_path / "arg") == tmp_path / "arg"
    load_corpus("chorales", max_pieces=1)
    assert len(list((tmp_path / "env" / "pianoroll").glob("*.npz"))) == 1

@pytest.mark.parametrize("name", ["nothere", "bach", "bach/nothere"])
def test_unknown_corpus_names(name):
    with pytest.raises(ValueError, match=f"name: music21's corpus has no '{name}'"): load_corpus(name)

def _random_pieces(seed, n=6, frames=60):
    "Pieces of random short notes over two octaves."
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        m = 80
        notes = torch.stack([torch.zeros(m, dtype=torch.long), torch.randint(50, 75, (m,), generator=g),
                             torch.randint(0, frames - 2, (m,), generator=g)], 1)
        notes = torch.cat([notes, notes[:, 2:3] + torch.randint(1, 3, (m, 1), generator=g)], 1)
        out.append(Piece(f"r{k}", notes.numpy().astype(np.int32), frames, ("v",)))
    return out

@pytest.fixture(scope="module")
def src():
    return PianoRollSource(_random_pieces(0), patch=(12, 10), max_shift=3, min_cells=4, eval_frac=0.34)

@settings(settings.get_profile("pianoroll"))
@given(st.integers(0, 2**31 - 1))
def test_views_are_the_roll_at_the_moved_window(src, seed):
    g = torch.Generator().manual_seed(seed)
    base = src.base(8, g)
    dy, dx = torch.randint(-6, 7, (8, 5), generator=g), torch.randint(-14, 15, (8, 5), generator=g)  # beyond max_shift too
    v = src.views(base, dy, dx)
    for i in range(8):
        piece, top, left = base[i].tolist()
        roll = torch.nn.functional.pad(src.pieces[piece].roll().float(), (30, 30))  # silence before and after the piece
        for j in range(5):
            y, x = top - int(dy[i, j]), left - int(dx[i, j]) + 30
            assert torch.equal(v[i, j, 0], roll[y:y + 12, x:x + 10])

@settings(settings.get_profile("pianoroll"))
@given(st.integers(0, 2**31 - 1), st.sampled_from(["train", "eval"]))
def test_triplet_crops_move_the_anchor_content(src, seed, split):
    t = src.triplets(64, torch.Generator().manual_seed(seed), split=split)
    assert t.anchor.shape == (64, 1, 12, 10)
    for crop, d in ((t.crop1, t.d1), (t.crop2, t.d2)):
        keep = shift_batch(torch.ones_like(t.anchor), d[:, 0], d[:, 1])
        assert torch.equal(crop * keep, shift_batch(t.anchor, d[:, 0], d[:, 1]))
    cells = torch.stack([t.anchor, t.crop1, t.crop2], 1).sum((2, 3, 4))
    assert (cells >= 4).all()
    assert not (t.crop1 == t.crop2).flatten(1).all(1).any()
    assert ((t.d1 != 0).sum(1) == 1).all() and t.d1.abs().max() <= 3

def test_split_is_by_piece_and_seeded(src):
    ids = {s: set(v.tolist()) for s, v in src.split_ids.items()}
    assert ids["train"].isdisjoint(ids["eval"]) and ids["train"] | ids["eval"] == set(range(6)) and len(ids["eval"]) == 2
    again = PianoRollSource(_random_pieces(0)[::-1], patch=(12, 10), max_shift=3, min_cells=4, eval_frac=0.34)
    assert all(torch.equal(again.split_ids[s], src.split_ids[s]) for s in ids)
    assert set(src.base(50, torch.Generator().manual_seed(0))[:, 0].tolist()) <= ids["eval"]

def test_triplets_are_reproducible_and_follow_the_generator_device(src):
    a = src.triplets(32, torch.Generator().manual_seed(7))
    b = src.triplets(32, torch.Generator().manual_seed(7))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a.anchor.dtype == torch.float32 and a.target.shape == (32,)

@pytest.mark.parametrize("kw, err, msg", [
    (dict(patch=(124, 8)), ValueError, "patch: 124 pitches"),
    (dict(patch=(8, 100)), ValueError, "data: 0 of 6 pieces"),
    (dict(patch="big"), TypeError, "patch must be an int"),
    (dict(max_shift=0), ValueError, "max_shift must be >= 1"),
    (dict(min_cells=0), ValueError, "min_cells must be >= 1"),
    (dict(eval_frac=0.0), ValueError, "eval_frac must be > 0"),
    (dict(data="/does/not/exist"), ValueError, "data: '/does/not/exist' is neither a corpus"),
    (dict(data="nothere"), ValueError, "data: 'nothere' is neither a corpus"),
    (dict(data=[1]), TypeError, "data: a list must hold"),
])
def test_bad_source_arguments(kw, err, msg):
    kw = {"data": _random_pieces(0), **kw}
    with pytest.raises(err, match=msg): PianoRollSource(**kw)

def test_data_folder_without_midi(tmp_path):
    with pytest.raises(ValueError, match="path: no MIDI files"): load_pieces(tmp_path)

def test_unsatisfiable_notes_rule_says_so():
    sparse = [Piece(f"s{k}", np.array([[0, 60, 5, 6]], dtype=np.int32), 40, ("v",)) for k in range(3)]
    s = PianoRollSource(sparse, patch=8, max_shift=2, min_cells=3, max_rounds=3)
    with pytest.raises(RuntimeError, match="min_cells=3"): s.triplets(4)

def test_key_classes_and_fifths():
    from softfactor.pianoroll import key_class, fifths_neighbours, KEY_NAMES
    assert key_class(Piece("x", np.zeros((1, 4), np.int32), 1, ("v",), 9, "minor")) == 21 and KEY_NAMES[21] == "A minor"
    assert key_class(Piece("x", np.zeros((1, 4), np.int32), 1, ("v",), 2, "dorian")) is None
    Z = np.array([[0.], [0.], [0.], [1.], [1.], [1.], [5.], [5.], [5.]])
    r = fifths_neighbours(Z, np.array([0] * 3 + [7] * 3 + [3] * 3))  # C and G major close, Eb major far
    assert r["pairs"][:2] == [("C major", "G major"), ("Eb major", "G major")] and r["keys"] == 3
    assert abs(r["rate"] - 2 / 3) < 1e-9 and abs(r["chance"] - 1 / 3) < 1e-9
    with pytest.raises(ValueError, match="keys: only 1 keys"): fifths_neighbours(Z[:3], np.array([0] * 3))

def test_augmentation_disentanglement_runs_on_a_piano_roll_source():
    from softfactor.encoder import ToyEncoder
    from softfactor.pianoroll import augmentation_disentanglement
    torch.manual_seed(0)
    square = PianoRollSource(_random_pieces(0), patch=10, max_shift=3, min_cells=4)  # the protocol's views are square
    r = augmentation_disentanglement(ToyEncoder(), square, n=20)
    assert set(r) == {"directions_cos", "transposition", "time_shift"}
    assert r["transposition"]["q25"] <= r["transposition"]["median"] <= r["transposition"]["q75"]

def test_train_and_analyze_cli_on_a_midi_folder(tmp_path):
    "`softfactor-train --data FOLDER` trains on a folder of MIDI files through the registered `folder` source."
    folder, g = tmp_path / "midi", torch.Generator().manual_seed(0)
    for k in range(4):
        write_midi(folder / f"s{k}.mid", [("p", 0, False, [(q / 2, 0.5, int(p)) for q, p in enumerate(torch.randint(55, 75, (64,), generator=g))])])
    env = {**__import__("os").environ, "SOFTFACTOR_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", "from softfactor.training import main; main()", "--data", str(folder), "--steps", "3",
           "--batch-size", "16", "--threads", "1", "--out", str(tmp_path / "run"), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == str(folder)
    assert "same_sign_cos" in json.loads((tmp_path / "run" / "metrics.json").read_text())
    bad = subprocess.run(cmd[:3] + ["--data", str(tmp_path / "nothere"), "--out", str(tmp_path / "run2")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "data must be one of" in bad.stderr and "Traceback" not in bad.stderr

# --- controls of the post: nulls of the probes, the zero-fill source, the Essen modes, no file outside the repo

def _grid_rows(n_items=40, dim=8, seed=0, signal=True):
    "Rows like `grid_table`'s: every (dy, dx) of {-4..4}^2 once per item, with a code that holds dy (or noise only)."
    rng = np.random.default_rng(seed)
    sh = np.arange(-4, 5)
    dy = np.tile(np.repeat(sh, 9), n_items); dx = np.tile(np.tile(sh, 9), n_items)
    X = rng.normal(size=(len(dy), dim))
    if signal: X[:, 0] += 3 * dy
    return X, dy, dx, np.repeat(np.arange(n_items), 81)

def test_shuffled_label_probe_is_at_the_majority_baseline():
    from softfactor.pianoroll import probe_baselines
    X, dy, dx, g = _grid_rows()
    r = probe_baselines(X, dy, dx, g)
    assert abs(r["majority_dy"] - 1 / 9) < 1e-9           # every shift once per item: the majority is 1/9
    assert abs(r["shuffled_linear_dy"] - r["majority_dy"]) < 0.05  # the code holds dy, but the labels were shuffled

def test_probe_baselines_use_the_shift_probes_split():
    "The real probe, on the same split, reads dy from this code; the shuffled one cannot."
    from softfactor.analysis import shift_probes
    from softfactor.pianoroll import probe_baselines
    X, dy, dx, g = _grid_rows(16)
    assert shift_probes(X, dy, dx, g)["probe_linear_acc_dy"] > 0.5
    assert probe_baselines(X, dy, dx, g)["shuffled_linear_dy"] < 0.2

def test_probe_baselines_bad_input():
    from softfactor.pianoroll import probe_baselines
    X, dy, dx, g = _grid_rows(4)
    with pytest.raises(ValueError, match="X must be"): probe_baselines(X[:-1], dy, dx, g)
    with pytest.raises(ValueError, match="test_frac must be"): probe_baselines(X, dy, dx, g, test_frac=2.)

def test_zero_fill_rolls_keep_anchors_and_labels(src):
    from softfactor.pianoroll import ZeroFillRolls
    zf = ZeroFillRolls(src)
    a, b = zf.triplets(64, torch.Generator().manual_seed(1)), src.triplets(64, torch.Generator().manual_seed(1))
    assert torch.equal(a.anchor, b.anchor) and torch.equal(a.target, b.target) and torch.equal(a.d2, b.d2)
    assert torch.equal(a.crop2, shift_batch(b.anchor, b.d2[:, 0], b.d2[:, 1]))
    base = src.base(4, torch.Generator().manual_seed(0))
    d = torch.tensor([[0, 2, -3]] * 4)
    v = zf.views(base, d, -d)
    assert v.shape == (4, 3, 1, 12, 10)
    assert torch.equal(v[:, 1], shift_batch(v[:, 0], d[:, 1], -d[:, 1]))
    with pytest.raises(TypeError, match="source must be a PianoRollSource"): ZeroFillRolls("chorales")

def test_written_and_third_modes():
    from softfactor.pianoroll import written_mode, third_mode, abc_key_fields
    assert [written_mode(k) for k in ("Gm", "G", "Ebm", "H")] == ["minor", "major", "minor", "major"]
    notes = np.array([[0, 62, 0, 8], [0, 65, 8, 12], [0, 66, 12, 13]])  # D, F long, F# short
    assert third_mode(notes, 2) == "minor"
    fields = abc_key_fields("essenFolksong/folkHaydn")
    assert sum(written_mode(v) == "minor" for v in fields.values()) == 13

def test_notebook_reads_no_file_outside_the_repository():
    "08 reads its runs from committed files under nbs/data/, each of which exists; nothing from ../runs or a home folder."
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    nb = json.loads((root / "nbs" / "08_pianoroll.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "../runs" not in code and "runs/" not in code.replace("runs/{", "")
    assert "load_encoder(" not in code  # no run directory is loaded
    cited = set(re.findall(r"DATA / '([^']+)'", code))
    assert {"pianoroll_runs.jsonl", "pianoroll_default_run.json", "pianoroll_encoders"} <= cited
    for name in cited: assert (root / "nbs" / "data" / name).exists(), name
    rows = [json.loads(l) for l in (root / "nbs" / "data" / "pianoroll_runs.jsonl").read_text().splitlines()]
    for cond in ("blobs", "blobs-untrained", "chorales", "chorales-untrained", "chorales-zerofill"):
        assert sorted(r["seed"] for r in rows if r["condition"] == cond) == [0, 1, 2], cond

def test_midi_folder_given_as_a_relative_path(tmp_path, monkeypatch):
    "A folder named relative to the working directory loads like the same folder named absolutely."
    for k in range(2): write_midi(tmp_path / "midi" / f"r{k}.mid", [("p", 0, False, [(q, 1, 60 + k + q) for q in range(8)])])
    monkeypatch.chdir(tmp_path)
    pieces = load_midi_folder("midi", cache_dir=tmp_path / "cache")
    assert sorted(p.id for p in pieces) == ["r0.mid", "r1.mid"]
