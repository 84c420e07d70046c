"""Every notebook in `nbs/` is a test: it runs top to bottom (with IN_TEST=1, as `nbdev-test` does) and its
assertions must hold. Each runs in a fresh process so no state leaks between notebooks."""
import subprocess, sys
import pytest
from conftest import NBS

NOTEBOOKS = sorted(p.name for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))

_RUN = """
import sys
from nbdev.test import test_nb
ok, secs = test_nb(sys.argv[1], skip_flags=['slow'])
print(f'{sys.argv[1]}: {"ok" if ok else "FAILED"} in {secs:.1f}s')
sys.exit(0 if ok else 1)
"""

def test_notebook_list_is_complete():
    "The numbered notebooks the project documents are all present."
    for nb in ("index.ipynb", "00_blobs.ipynb", "01_encoder.ipynb", "02_factorization.ipynb", "03_lejepa.ipynb",
               "04_training.ipynb", "05_analysis.ipynb", "05a_beyond.ipynb", "06_oplas.ipynb",
               "07_notes.ipynb", "07a_multiview.ipynb", "08_pianoroll.ipynb", "09_oplas_music.ipynb", "10_keys.ipynb"):
        assert nb in NOTEBOOKS, nb

@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_notebook(nb):
    res = subprocess.run([sys.executable, "-c", _RUN, str(NBS / nb)], cwd=NBS, capture_output=True, text=True,
                         env={**__import__('os').environ, "IN_TEST": "1", "MPLBACKEND": "Agg"})
    assert res.returncode == 0, f"{nb} failed:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
