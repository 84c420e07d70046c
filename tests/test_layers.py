"""The modules form layers in notebook order: every import of a softfactor module points to an earlier notebook's
module (so there can be no cycle), nothing is exported under two names, and no private helper crosses a module
boundary. The modules are read with `ast`, every import statement included (also those inside functions)."""
import ast, re
from pathlib import Path
import pytest
from conftest import ROOT

PKG = ROOT / 'softfactor'

def _notebook(path):
    m = re.search(r'File to edit: \.\./nbs/(\S+)\.ipynb', path.read_text())
    return m[1] if m else None

MODULES = {p.stem: _notebook(p) for p in PKG.glob('*.py') if not p.stem.startswith('_')}

def _imports(name):
    "(imported softfactor module, imported names) for every import statement of a module."
    out = []
    for node in ast.walk(ast.parse((PKG / f'{name}.py').read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level: mod = 'softfactor.' + mod if mod else 'softfactor'
            if mod.startswith('softfactor.'): out.append((mod.split('.')[1], [a.name for a in node.names]))
            elif mod == 'softfactor': out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name.split('.')[1], []) for a in node.names if a.name.startswith('softfactor.')]
    return out

def test_every_module_comes_from_a_notebook():
    assert MODULES and all(MODULES.values()), MODULES

@pytest.mark.parametrize('name', sorted(MODULES))
def test_imports_only_earlier_notebooks(name):
    for target, _ in _imports(name):
        assert target in MODULES, f"{name} imports softfactor.{target}, which no notebook exports"
        assert MODULES[target] < MODULES[name], f"{name} ({MODULES[name]}) imports {target} from a later notebook ({MODULES[target]})"

@pytest.mark.parametrize('name', sorted(MODULES))
def test_no_private_helper_crosses_modules(name):
    for target, names in _imports(name):
        private = [n for n in names if n.startswith('_')]
        assert not private, f"{name} imports private {private} from {target}: make them public where they live"

def test_nothing_is_exported_under_two_names():
    "Every name in a module's __all__ is defined there, not imported from elsewhere and listed again."
    import importlib
    for name in MODULES:
        mod = importlib.import_module(f'softfactor.{name}')
        tree = ast.parse((PKG / f'{name}.py').read_text())
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        defined |= {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                    for t in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(t, ast.Name)}
        for export in mod.__all__:
            assert export in defined, f"softfactor.{name} exports {export} without defining it"
            obj = getattr(mod, export)
            if hasattr(obj, '__module__') and callable(obj): assert obj.__module__ == mod.__name__, (name, export, obj.__module__)
