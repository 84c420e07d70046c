"""The exported package stands alone: every module imports in a fresh process, without any notebook."""
import subprocess, sys
import pytest
from conftest import ROOT

MODULES = sorted(p.stem for p in (ROOT / "softfactor").glob("*.py") if not p.stem.startswith("_"))

def test_core_modules_exported():
    for m in ("blobs", "encoder", "factorization"): assert m in MODULES

@pytest.mark.parametrize("mod", MODULES)
def test_module_imports_in_fresh_process(mod):
    res = subprocess.run([sys.executable, "-c", f"import softfactor.{mod}"], capture_output=True, text=True, cwd="/")
    assert res.returncode == 0, res.stderr[-3000:]
