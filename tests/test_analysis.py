"Tests of softfactor.analysis: disentanglement scores on synthetic codes, the §6 report on known geometry, the CLI end to end."
import json, math, os, subprocess, sys
import numpy as np
import pytest, torch
from hypothesis import given, settings, strategies as st
from softfactor.analysis import cosine_report_per_image, dci, grid_svd, mig, shift_grid
from softfactor.protocol import CentroidEncoder, cosine_report, cosine_stats, difference_vectors
from softfactor.blobs import BlobSource, blob_batch, shift_batch, shift_views

ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
torch.set_num_threads(1)

# ---------------------------------------------------------------- disentanglement scores on synthetic codes

def _codes(seed=7, n=3000):
    rng = np.random.default_rng(seed)
    F = rng.integers(-4, 5, (n, 2))
    noise = rng.normal(size=(n, 4))
    dis = np.concatenate([F + 0.05 * rng.normal(size=F.shape), noise], 1)
    R = np.array([[1, -1], [1, 1]]) / math.sqrt(2)
    return F, dis, np.concatenate([F @ R, noise], 1), noise

def test_mig_disentangled_rotated_noise():
    F, dis, rot, noise = _codes()
    assert mig(dis, F)['mig'] > 0.9
    assert mig(rot, F)['mig'] < 0.15
    assert mig(noise, F)['mig'] < 0.05

def test_dci_disentangled_vs_rotated():
    F, dis, rot, _ = _codes()
    for model in ('forest', 'linear'):
        a, b = dci(dis, F, model=model), dci(rot, F, model=model)
        assert a['disentanglement'] > 0.9 and a['completeness'] > 0.8, (model, a)
        assert b['disentanglement'] < 0.2 and b['completeness'] < a['completeness'] - 0.2, (model, b)
        assert a['informativeness'] > 0.95

@settings(max_examples=10, deadline=None)
@given(perm_seed=st.integers(0, 1000), scale=st.floats(0.1, 10))
def test_mig_ignores_coordinate_order_and_scale(perm_seed, scale):
    F, dis, _, _ = _codes(n=1500)
    perm = np.random.default_rng(perm_seed).permutation(dis.shape[1])
    assert mig(dis[:, perm] * scale, F)['mig'] == pytest.approx(mig(dis, F)['mig'], abs=1e-9)

def test_scores_reject_bad_input():
    F, dis, _, _ = _codes(n=100)
    with pytest.raises(ValueError, match='factors must have shape'): mig(dis, F[:50])
    with pytest.raises(ValueError, match='codes must be a 2-D array'): dci(dis[:, 0], F)
    with pytest.raises(ValueError, match="model must be one of forest, gbt, linear; got 'lasso'"): dci(dis, F, model='lasso')

# ---------------------------------------------------------------- the §6 report on known geometry

class _CentralBlobs(BlobSource):
    "Blobs that no shift of at most 4 can push across the border: one 2x2 square inside rows/cols 5..10."
    def base(self, n, generator=None, split='eval'):
        x = torch.zeros(n, 1, 16, 16)
        yx = torch.randint(5, 10, (n, 2), generator=generator)
        for i, (y, c) in enumerate(yx.tolist()): x[i, 0, y:y + 2, c:c + 2] = 1.
        return x

def test_report_exact_for_a_linear_position_encoder():
    "A fixed linear map of the centroid, on blobs that never touch the border: the ideal report, exactly."
    for seed in (0, 1):
        r = cosine_report(CentroidEncoder(8, seed=seed, orthogonal=False), _CentralBlobs(), n=200, seed=seed)
        assert r['same_sign_cos'] == pytest.approx(1, abs=1e-5)
        assert r['same_sign_abs_cos'] == pytest.approx(1, abs=1e-5)
        assert r['opp_sign_cos'] == pytest.approx(-1, abs=1e-5)
        assert r['angle_pitch_deg'] == pytest.approx(180, abs=0.1)
        assert r['angle_time_deg'] == pytest.approx(180, abs=0.1)
    r = cosine_report(CentroidEncoder(8), _CentralBlobs(), n=200)  # orthonormal row and column directions
    assert r['cross_abs_cos'] == pytest.approx(0, abs=1e-5)
    enc = CentroidEncoder(8, seed=3, orthogonal=False)  # skewed: the cross-type cosine is the cosine of its two columns
    W = enc.W
    expected = float(W[0] @ W[1] / (W[0].norm() * W[1].norm()))
    assert cosine_report(enc, _CentralBlobs(), n=100)['cross_cos'] == pytest.approx(expected, abs=1e-5)

def test_report_matches_an_independent_numpy_computation():
    "On real blobs (border effects included) the report equals a direct per-blob numpy computation of the centroids."
    n, seed = 60, 4
    r = cosine_report(CentroidEncoder(2), n=n, seed=seed)
    g = torch.Generator().manual_seed(seed)
    s1 = torch.randint(1, 5, (n,), generator=g)
    s2 = (s1 - 1 + torch.randint(1, 4, (n,), generator=g)) % 4 + 1
    base = blob_batch(n, 16, generator=g)[:, 0].numpy()
    def shifted(img, dy, dx):
        out = np.zeros_like(img)
        H, W = img.shape
        out[max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = img[max(-dy, 0):H - max(dy, 0), max(-dx, 0):W - max(dx, 0)]
        return out
    def centroid(img):  # an empty image (everything pushed out) has its centroid at the origin, as in CentroidEncoder
        m = img.sum(); ys, xs = np.nonzero(img)
        if m == 0: return np.zeros(2)
        return np.array([(ys * img[ys, xs]).sum() / m, (xs * img[ys, xs]).sum() / m])
    def cos(a, b):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return float(a @ b / (na * nb)) if na > 1e-8 and nb > 1e-8 else 0.
    same, opp, cross = [], [], []
    for i in range(n):
        a, b = int(s1[i]), int(s2[i])
        c0 = centroid(base[i])
        d = lambda dy, dx: centroid(shifted(base[i], dy, dx)) - c0
        same += [cos(d(a, 0), d(b, 0)), cos(d(0, a), d(0, b))]
        opp += [cos(d(a, 0), d(-a, 0)), cos(d(0, a), d(0, -a))]
        cross.append(cos(d(a, 0), d(0, a)))
    assert r['same_sign_cos'] == pytest.approx(np.mean(same), abs=1e-4)
    assert r['opp_sign_abs_cos'] == pytest.approx(np.mean(np.abs(opp)), abs=1e-4)
    assert r['cross_abs_cos'] == pytest.approx(np.mean(np.abs(cross)), abs=1e-4)

def test_batched_equals_per_image_for_a_convnet():
    from softfactor.encoder import ToyEncoder
    torch.manual_seed(0)
    enc = ToyEncoder()
    for views in ('zero', 'canvas', 'margin'):
        src = BlobSource(views=views)
        a, b = cosine_report(enc, src, n=30, seed=2), cosine_report_per_image(enc, src, n=30, seed=2)
        assert a.keys() == b.keys()
        assert all(a[k] == pytest.approx(b[k], abs=1e-2 if k.startswith('angle') else 1e-4) for k in a)  # float32 sums in another order

def test_report_keys_and_rotation_invariance():
    gen = torch.Generator().manual_seed(0)
    p, t = torch.randn(50, 3, 6, generator=gen), torch.randn(50, 3, 6, generator=gen)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen))
    a, b = cosine_stats(p, t), cosine_stats(p @ Q, t @ Q)
    assert all(a[k] == pytest.approx(b[k], abs=1e-4) for k in a)
    r = cosine_report(CentroidEncoder(), n=20)
    axis_keys = {f'{g}_{k}_{ax}' for g in ('same_sign', 'opp_sign') for k in ('cos', 'abs_cos') for ax in ('pitch', 'time')}
    assert set(r) == {'same_sign_cos', 'same_sign_abs_cos', 'opp_sign_cos', 'opp_sign_abs_cos', 'cross_cos', 'cross_abs_cos',
                      'angle_pitch_deg', 'angle_time_deg', 'n', 'seed'} | axis_keys
    assert all(isinstance(r[k], float) for k in r if k not in ('n', 'seed'))

def test_zero_difference_gives_no_nan():
    class Constant(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(4))
        def forward(self, x): return self.w.expand(len(x), 4)
    r = cosine_report(Constant(), n=10)
    assert not any(isinstance(v, float) and math.isnan(v) for v in r.values())
    assert r['same_sign_cos'] == 0 and r['angle_pitch_deg'] == 90

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_zero_fill_views_are_shift_batch(seed):
    g = torch.Generator().manual_seed(seed)
    x = blob_batch(4, generator=g)
    dy, dx = torch.randint(-6, 7, (4, 3), generator=g), torch.randint(-6, 7, (4, 3), generator=g)
    v = shift_views(x, dy, dx)
    for j in range(3): assert torch.equal(v[:, j], shift_batch(x, dy[:, j], dx[:, j]))

def test_canvas_views_are_windows():
    g = torch.Generator().manual_seed(1)
    big = blob_batch(3, 24, 5, generator=g)
    dy, dx = torch.tensor([[4, -4, 0]] * 3), torch.tensor([[0, 3, -4]] * 3)
    v = shift_views(big, dy, dx, 16)
    assert torch.equal(v[1, 1, 0], big[1, 0, 8:24, 1:17])
    with pytest.raises(ValueError, match='shifts must lie in'): shift_views(big, dy * 2, dx, 16)

def test_grid_svd_rank_one_for_additive_latents():
    sh = torch.arange(-4, 5).float()
    u, v, a = torch.randn(3, 5)
    z = (a + sh[:, None, None] * u + sh[None, :, None] * v)[None].repeat(3, 1, 1, 1)
    r = grid_svd(z)
    assert r['first_frac_pitch'] == pytest.approx(1, abs=1e-5) and r['first_energy_time'] == pytest.approx(1, abs=1e-5)

def test_shift_grid_layout():
    grid = shift_grid(CentroidEncoder(2, orthogonal=True), BlobSource(max_shift=2), n=3)
    z = grid['z']
    assert z.shape == (3, 5, 5, 2)
    # for the centroid encoder, moving right (dx>0) moves the latent along the column direction
    W = CentroidEncoder(2).W
    step = (z[:, 2, 3] - z[:, 2, 2]) @ W[1]
    assert (step > 0).all()

# ---------------------------------------------------------------- package and CLI

def test_module_imports_standalone():
    res = subprocess.run([sys.executable, '-c', 'import softfactor.analysis as a; print(a.cosine_report.__name__)'],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 0 and 'cosine_report' in res.stdout, res.stderr

@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
    from softfactor.training import TrainConfig, train
    run = tmp_path_factory.mktemp('run') / 'tiny'
    train(TrainConfig(steps=5, batch_size=16, device='cpu'), out=run, progress=False, evaluate=False)
    return run

def _cli(*args):
    return subprocess.run(['softfactor-analyze', *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)

def test_cli_end_to_end(tiny_run, tmp_path):
    out = tmp_path / 'analysis'
    small = ['--n', '40', '--seeds', '0,1', '--grid-items', '4', '--no-umap', '--no-tsne']
    res = _cli(tiny_run, '--out', out, *small)
    assert res.returncode == 0, res.stderr
    names = {p.name for p in out.iterdir()}
    assert {'analysis.json', 'pca_cross.png', 'cosine_hist.png', 'sign_asymmetry.png', 'grid_svd.png', 'kpca.png'} <= names
    a = json.loads((out / 'analysis.json').read_text())
    assert len(a['cosine_per_seed']) == 2 and "views='zero'" in a['source']
    assert a['cosine']['same_sign_cos'] == pytest.approx(np.mean([r['same_sign_cos'] for r in a['cosine_per_seed']]))
    assert 'cosine report' in res.stdout  # progress, stage by stage
    # the same command again reports the earlier result; other options are refused without --force
    again = _cli(tiny_run, '--out', out, *small)
    assert again.returncode == 0 and 'already holds this analysis' in again.stdout, again.stderr
    other = _cli(tiny_run, '--out', out, *small, '--views', 'canvas')
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1 and '--force' in other.stderr
    assert _cli(tiny_run, '--out', out, *small, '--force', '--views', 'canvas').returncode == 0
    assert "views='canvas'" in json.loads((out / 'analysis.json').read_text())['source']

@pytest.mark.parametrize('args, message', [
    (['--n', 'many'], 'invalid int value'),
    (['--views', 'sideways'], "--views must be one of zero, canvas, margin"),
    (['--seeds', 'a,b'], 'invalid comma-separated int list'),
])
def test_cli_bad_options(tiny_run, tmp_path, args, message):
    res = _cli(tiny_run, '--out', tmp_path / 'x', '--no-umap', '--no-tsne', *args)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr, res.stderr

def test_cli_missing_run(tmp_path):
    res = _cli(tmp_path / 'nothing')
    assert res.returncode == 2 and 'no run at' in res.stderr and len(res.stderr.strip().splitlines()) == 1

def test_difference_vectors_accepts_own_base_images():
    enc, n, seed = CentroidEncoder(4), 30, 9
    g = torch.Generator().manual_seed(seed)
    torch.randint(1, 5, (n,), generator=g); torch.randint(1, 4, (n,), generator=g)  # the magnitudes come first
    base = blob_batch(n, 16, generator=g)
    a, b = difference_vectors(enc, n=n, seed=seed), difference_vectors(enc, seed=seed, base=base)
    assert torch.equal(a['pitch'], b['pitch']) and torch.equal(a['lost'], b['lost'])
    with pytest.raises(ValueError, match='x must be a tensor of shape'): difference_vectors(enc, base=base[:, 0])

def test_cli_unwritable_out(tiny_run, tmp_path):
    (tmp_path / 'file').write_text('')
    res = _cli(tiny_run, '--out', tmp_path / 'file' / 'a', '--no-umap', '--no-tsne')
    assert res.returncode == 2 and res.stderr.startswith('softfactor-analyze: error: out: cannot create'), res.stderr

def test_cli_version():
    res = _cli('--version')
    assert res.returncode == 0 and res.stdout.startswith('softfactor-analyze ')
