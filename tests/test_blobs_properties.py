"""Property tests of the shift algebra and of the batched generator (hypothesis)."""
import pytest, torch
from hypothesis import given, settings, strategies as st
from softfactor.blobs import (shift_no_wrap, shift_batch, make_blob, blob_batch, blob_triplet_batch,
                              BlobShiftDataset)

sizes = st.integers(4, 24)
settings.register_profile("softfactor", max_examples=60, deadline=None)
settings.load_profile("softfactor")

@st.composite
def image_and_shifts(draw, same_sign=None):
    h, w = draw(sizes), draw(sizes)
    seed = draw(st.integers(0, 2**31 - 1))
    x = (torch.rand(2, h, w, generator=torch.Generator().manual_seed(seed)) < 0.4).float()
    a = draw(st.integers(-h - 2, h + 2))
    b = draw(st.integers(0, h + 2) if (same_sign and a >= 0) else st.integers(-h - 2, 0) if same_sign else st.integers(-h - 2, h + 2))
    return x, a, b

@given(image_and_shifts(same_sign=True))
def test_same_sign_shifts_compose(args):
    x, a, b = args
    assert torch.equal(shift_no_wrap(shift_no_wrap(x, a, -2), b, -2), shift_no_wrap(x, a + b, -2))

@given(image_and_shifts())
def test_shift_and_back_keeps_only_the_surviving_cells(args):
    x, a, _ = args
    h = x.shape[-2]
    back = shift_no_wrap(shift_no_wrap(x, a, -2), -a, -2)
    keep = torch.zeros(h, 1)
    if abs(a) < h: keep[max(0, -a): h - max(0, a)] = 1  # rows whose content never left the image
    assert torch.equal(back, x * keep)

@given(sizes, sizes, st.integers(-30, 30), st.integers(-30, 30))
def test_zero_fill_counts(h, w, dy, dx):
    ones = torch.ones(h, w)
    out = shift_no_wrap(ones, (dy, dx), (0, 1))
    assert out.sum().item() == max(0, h - abs(dy)) * max(0, w - abs(dx))
    assert set(out.unique().tolist()) <= {0.0, 1.0}

@given(image_and_shifts(), st.integers(-30, 30))
def test_axes_commute(args, dx):
    x, dy, _ = args
    assert torch.equal(shift_no_wrap(shift_no_wrap(x, dy, -2), dx, -1), shift_no_wrap(shift_no_wrap(x, dx, -1), dy, -2))

@given(st.integers(1, 16), sizes, sizes, st.integers(0, 2**31 - 1))
def test_shift_batch_matches_shift_no_wrap(b, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, 1, h, w, generator=g) < 0.3).float()
    dy, dx = torch.randint(-h - 1, h + 2, (b,), generator=g), torch.randint(-w - 1, w + 2, (b,), generator=g)
    expected = torch.stack([shift_no_wrap(x[i], (int(dy[i]), int(dx[i])), (-2, -1)) for i in range(b)])
    assert torch.equal(shift_batch(x, dy, dx), expected)

@given(st.integers(4, 20), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_blob_images_are_binary_and_in_range(sz, n_blobs, seed):
    x = blob_batch(8, sz, n_blobs, generator=torch.Generator().manual_seed(seed))
    assert x.shape == (8, 1, sz, sz) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert (x.flatten(1).sum(1) >= 1).all()  # at least one rectangle always lands inside
    y = make_blob(sz, n_blobs, generator=torch.Generator().manual_seed(seed))
    assert y.shape == (1, sz, sz) and y.sum() >= 1

@given(st.integers(4, 20), st.data())
def test_triplet_crops_are_shifts_of_the_anchor(sz, data):
    max_shift = data.draw(st.integers(1, sz - 1))
    seed = data.draw(st.integers(0, 2**31 - 1))
    a, c1, c2, tgt, sch, d1, d2 = blob_triplet_batch(32, sz, max_shift, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(c1, shift_batch(a, d1[:, 0], d1[:, 1])) and torch.equal(c2, shift_batch(a, d2[:, 0], d2[:, 1]))
    assert not (c1 == c2).flatten(1).all(1).any()
    mags = torch.cat([d1, d2]).abs()
    assert mags.max() <= max_shift and ((mags.max(1).values >= 1)).all()  # exactly one axis moves, by 1..max_shift
    assert ((d1 != 0).sum(1) == 1).all() and ((d2 != 0).sum(1) == 1).all()
    # labels agree with the shifts: scheme 2 is pitch then time, targets are sign products
    same_axis = (d1 != 0).eq(d2 != 0).all(1)
    assert torch.equal(sch == 2, ~same_axis)
    sign = lambda d: d.sum(1).sign()
    assert torch.equal(tgt, torch.where(same_axis, (sign(d1) * sign(d2)).float(), 0.0))

@pytest.mark.parametrize("kw, msg", [
    (dict(sz=3), "sz must be >= 4"), (dict(n_blobs=0), "n_blobs must be >= 1"),
    (dict(max_shift=0), "max_shift must be >= 1"), (dict(max_shift=16), "max_shift must be < sz"),
    (dict(sz=16.0), "sz must be an integer"), (dict(max_shift=2.5), "max_shift must be an integer")])
def test_bad_arguments_raise_clear_errors(kw, msg):
    with pytest.raises((ValueError, TypeError), match=msg): BlobShiftDataset(**kw)
    with pytest.raises((ValueError, TypeError), match=msg): blob_triplet_batch(4, **kw)

def test_shift_errors():
    x = torch.zeros(1, 8, 8)
    with pytest.raises(TypeError, match="shifts must be an integer"): shift_no_wrap(x, 1.0, 1)
    with pytest.raises(ValueError, match="dimension 5 does not exist"): shift_no_wrap(x, 1, 5)
    with pytest.raises(ValueError, match="dimension -4 does not exist"): shift_no_wrap(x, 1, -4)
