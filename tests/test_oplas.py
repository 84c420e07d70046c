"Property tests of softfactor.oplas (FiLMR rotations, VICReg) and end-to-end tests of the softfactor-oplas command."
import json, math, os, subprocess, sys
import numpy as np
import pytest, torch
from hypothesis import given, settings, assume, strategies as st
from softfactor.oplas import (vicreg_loss, plane_basis, plane_rotation_givens, plane_rotation_expm, givens_frame, FiLMR,
                              additivity_report, make_mixes)

torch.set_num_threads(1)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'MPLBACKEND': 'Agg'}
ROTATIONS = (plane_rotation_givens, plane_rotation_expm)
PROPS = settings(max_examples=40, deadline=None)

def _vectors(seed, dim):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(dim, generator=g, dtype=torch.float64), torch.randn(dim, generator=g, dtype=torch.float64), g

@PROPS
@given(dim=st.integers(2, 12), seed=st.integers(0, 2**31 - 1), theta=st.floats(-2 * math.pi, 2 * math.pi), k=st.integers(1, 6))
def test_plane_rotations_are_rotations_in_the_plane(dim, seed, theta, k):
    u, v, g = _vectors(seed, dim)
    u_hat, v_hat, ok = plane_basis(u, v)
    assume(bool(ok) and (v - (v @ u_hat) * u_hat).norm() > 1e-3 * v.norm())  # a well-defined plane
    eye = torch.eye(dim, dtype=torch.float64)
    for rot in ROTATIONS:
        R = rot(u, v, theta)
        assert torch.allclose(R @ R.T, eye, atol=1e-9)
        assert abs(torch.linalg.det(R).item() - 1) < 1e-9
        assert torch.allclose(R @ u_hat, math.cos(theta) * u_hat + math.sin(theta) * v_hat, atol=1e-9)  # û turns toward v̂
        assert torch.allclose(torch.linalg.matrix_power(R, k), rot(u, v, k * theta), atol=1e-8)
        w = torch.randn(dim, generator=g, dtype=torch.float64)
        w = w - (w @ u_hat) * u_hat - (w @ v_hat) * v_hat  # orthogonal to the plane: unchanged
        assert torch.allclose(R @ w, w, atol=1e-9)
    assert torch.allclose(plane_rotation_givens(u, v, theta), plane_rotation_expm(u, v, theta), atol=1e-9)

@PROPS
@given(dim=st.integers(2, 12), seed=st.integers(0, 2**31 - 1))
def test_givens_frame_carries_the_plane_to_the_first_two_axes(dim, seed):
    u, v, _ = _vectors(seed, dim)
    M = givens_frame(u, v)
    assert torch.allclose(M @ M.T, torch.eye(dim, dtype=torch.float64), atol=1e-10)
    Mu, Mv = M @ u, M @ v
    assert torch.allclose(Mu[1:], torch.zeros(dim - 1, dtype=torch.float64), atol=1e-10) and abs(Mu[0] - u.norm()) < 1e-10
    assert torch.allclose(Mv[2:], torch.zeros(dim - 2, dtype=torch.float64), atol=1e-10) and Mv[1] >= 0

@PROPS
@given(dim=st.integers(2, 10), seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0., 1., -2.5, 1e-3]),
       u_zero=st.booleans(), theta=st.floats(-4., 4.))
def test_degenerate_planes_give_the_identity_without_nan(dim, seed, scale, u_zero, theta):
    u, _, _ = _vectors(seed, dim)
    u = torch.zeros_like(u) if u_zero else u
    v = scale * u
    for rot in ROTATIONS:
        uu, vv, th = u.clone().requires_grad_(), v.clone().requires_grad_(), torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        R = rot(uu, vv, th)
        assert torch.equal(R.detach(), torch.eye(dim, dtype=torch.float64))
        (R * torch.arange(dim * dim, dtype=torch.float64).view(dim, dim)).sum().backward()
        assert all(torch.isfinite(t.grad).all() for t in (uu, vv, th))

@PROPS
@given(dim=st.integers(2, 9), seed=st.integers(0, 10_000), method=st.sampled_from(['givens', 'expm']))
def test_every_filmr_parameter_is_registered_and_trained(dim, seed, method):
    torch.manual_seed(seed)
    m = FiLMR(dim, method)
    assert sorted(n for n, _ in m.named_parameters()) == ['beta', 'gamma', 'theta', 'u', 'v']
    assert set(m.state_dict()) == {'beta', 'gamma', 'theta', 'u', 'v'}
    x, target = torch.randn(16, dim), torch.randn(16, dim)
    torch.nn.functional.mse_loss(m(x), target).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        # in 2-D the plane is the whole space: u and v only choose the direction of turning, a zero gradient
        if dim > 2 or name not in ('u', 'v'): assert p.grad.abs().sum() > 0, name

def test_filmr_constructions_agree_for_the_same_parameters():
    torch.manual_seed(0)
    a = FiLMR(7, 'givens'); b = FiLMR(7, 'expm'); b.load_state_dict(a.state_dict())
    x = torch.randn(5, 7)
    assert torch.allclose(a(x), b(x), atol=1e-5) and torch.allclose(a.rotation(), b.rotation(), atol=1e-5)

def _vicreg_numpy(a, b, inv, var, cov, gamma, eps):
    "VICReg from the definitions, with numpy: MSE; mean of both branches' std hinges; sum of both branches' off-diagonal cov² / D."
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    D = a.shape[1]
    invariance = np.mean((a - b) ** 2)
    hinge = lambda z: np.mean(np.maximum(0., gamma - np.sqrt(np.var(z, axis=0, ddof=1) + eps)))
    def off(z):
        c = np.cov(z, rowvar=False, ddof=1).reshape(D, D)
        return (np.sum(c ** 2) - np.sum(np.diag(c) ** 2)) / D
    variance, covariance = (hinge(a) + hinge(b)) / 2, off(a) + off(b)
    return inv * invariance + var * variance + cov * covariance, invariance, variance, covariance

@PROPS
@given(B=st.integers(2, 40), D=st.integers(1, 8), seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 5.),
       inv=st.floats(0, 30), var=st.floats(0, 30), cov=st.floats(0, 3), gamma=st.floats(0.1, 2.))
def test_vicreg_matches_a_direct_computation(B, D, seed, scale, inv, var, cov, gamma):
    g = torch.Generator().manual_seed(seed)
    z1 = scale * torch.randn(B, D, generator=g, dtype=torch.float64)
    z2 = z1 + torch.randn(B, D, generator=g, dtype=torch.float64)
    ours = vicreg_loss(z1, z2, inv, var, cov, gamma)
    expected = _vicreg_numpy(z1.numpy(), z2.numpy(), inv, var, cov, gamma, 1e-4)
    for key, e in zip(('loss', 'invariance', 'variance', 'covariance'), expected):
        assert math.isclose(ours[key].item(), e, rel_tol=1e-9, abs_tol=1e-9), key

def test_vicreg_collapse_and_identical_branches():
    z = torch.randn(128, 6)
    assert vicreg_loss(z, z)['invariance'].item() == 0
    collapsed = vicreg_loss(torch.zeros(128, 6), torch.zeros(128, 6))
    assert math.isclose(collapsed['variance'].item(), 1 - 1e-2, rel_tol=1e-6)
    assert collapsed['variance'].item() > vicreg_loss(3 * z, 3 * z)['variance'].item() + 0.9

def test_additivity_report_and_mixes():
    z = torch.randn(512, 8)
    assert additivity_report(z, z)['top1'] == 1.
    stems, mask, mix = make_mixes(64, generator=torch.Generator().manual_seed(0), mode='sum')
    assert torch.equal(mix, stems.sum(1)) and mask.sum(1).min() >= 2

def _cli(*args, cwd):
    return subprocess.run(['softfactor-oplas', *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=300)

def test_cli_end_to_end(tmp_path):
    out = tmp_path / 'out'
    r = _cli('stargate', '--out', out, '--steps', 20, '--seeds', '0,1', '--n-eval', 5, '--operators', 'givens,matrix', '--quiet', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / 'stargate.json').read_text())
    assert [(x['operator'], x['seed']) for x in res['runs']] == [('givens', 0), ('givens', 1), ('matrix', 0), ('matrix', 1)]
    assert len(res['summary']['matrix']['step_accuracy']) == 12 and res['wall_time_s'] > 0
    assert (out / 'stargate_curves.png').stat().st_size > 0 and (out / 'stargate_rings.png').stat().st_size > 0
    r = _cli('mixing', '--out', out, '--steps', 10, '--n-train', 256, '--n-eval', 256, '--modes', 'union', '--encoder-steps', 2, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / 'mixing.json').read_text())
    assert set(res['summary']) == {'union'} and res['encoder']['source'] == 'trained'
    assert set(res['summary']['union']) == {'raw', 'projected'} and (out / 'mixing.png').exists()
    assert 'top-1' in r.stdout

@pytest.mark.parametrize('args, message', [
    (('mixer',), "invalid choice: 'mixer'"),
    (('stargate', '--bogus', '1'), 'unrecognized arguments'),
    (('stargate', '--steps', 'many'), 'invalid int value'),
    (('stargate', '--steps', '0'), '--steps must be >= 1'),
    (('stargate', '--seeds', 'a,b'), 'invalid comma-separated int list'),
    (('stargate', '--operators', 'rotor'), '--operators must be a non-empty selection'),
    (('mixing', '--modes', 'avg'), '--modes must be a non-empty selection'),
    (('mixing', '--encoder', 'no/such/run'), 'does not exist'),
    (('mixing', '--encoder-steps', '0'), '--encoder-steps must be >= 1'),
    (('mixing', '--device', 'tpu'), '--device must be cuda, mps or cpu'),
    ((), 'the following arguments are required: COMMAND'),
])
def test_cli_bad_options_get_one_line_and_status_2(tmp_path, args, message):
    r = _cli(*args, '--out', tmp_path / 'o', cwd=tmp_path) if len(args) > 1 else _cli(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr
    assert not (tmp_path / 'o').exists()  # nothing written

def test_cli_never_overwrites_results(tmp_path):
    args = ('stargate', '--out', tmp_path, '--steps', 5, '--seeds', 0, '--n-eval', 3, '--operators', 'matrix', '--quiet')
    assert _cli(*args, cwd=tmp_path).returncode == 0
    before = (tmp_path / 'stargate.json').read_text()
    r = _cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and 'pass --force' in r.stderr and (tmp_path / 'stargate.json').read_text() == before
    assert _cli(*args, '--force', cwd=tmp_path).returncode == 0

def test_module_imports_standalone():
    r = subprocess.run([sys.executable, '-c', 'import softfactor.oplas as o; print(o.FiLMR(3), o.main.__doc__)'],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0 and 'FiLMR' in r.stdout, r.stderr

def test_cli_unwritable_out_fails_before_any_work(tmp_path):
    (tmp_path / 'file').write_text('')
    for cmd in ('stargate', 'mixing'):
        r = _cli(cmd, '--out', tmp_path / 'file' / 'o', cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith('softfactor-oplas: error: out: cannot create'), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1

def test_cli_version_and_generated_options(tmp_path):
    from softfactor.oplas import MixingConfig, StargateConfig
    from dataclasses import fields
    r = _cli('--version', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('softfactor-oplas ')
    for cmd, cls in (('mixing', MixingConfig), ('stargate', StargateConfig)):
        text = ' '.join(_cli(cmd, '--help', cwd=tmp_path).stdout.split())
        for f in fields(cls): assert '--' + f.name.replace('_', '-') in text, (cmd, f.name)
