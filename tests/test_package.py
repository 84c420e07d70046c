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

def test_top_level_api():
    "`import softfactor` is light, and its names come from the modules that define them."
    code = ("import sys, softfactor; light = 'torch' not in sys.modules\n"
            "from softfactor import train, TrainConfig, BlobSource, cosine_report, analyze, FiLMR\n"
            "import softfactor.training as t, softfactor.protocol as p\n"
            "assert light and train is t.train and cosine_report is p.cosine_report\n"
            "assert all(getattr(softfactor, n) is not None for n in softfactor.__all__)\nprint('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert res.returncode == 0 and res.stdout.strip() == 'ok', res.stderr[-3000:]
