"""The site checks of `.ci/proc_nbs.py`: anchors a page will have, links to anchors it will not, TeX that the site's
extra Markdown format cannot convert."""
import importlib.util, json
from pathlib import Path
import pytest

ROOT = Path(__file__).parent.parent
spec = importlib.util.spec_from_file_location('proc_nbs', ROOT / '.ci' / 'proc_nbs.py')
proc = importlib.util.module_from_spec(spec); spec.loader.exec_module(proc)

def md(text): return {'cell_type': 'markdown', 'source': text, 'metadata': {}}
def doc(name):
    "A show_doc cell as nbdev processes it: the documentation is a Markdown output under a `###` heading."
    return {'cell_type': 'code', 'source': f'show_doc({name})', 'metadata': {}, 'outputs': [
        {'output_type': 'display_data', 'data': {'text/markdown': f'---\n\n### {name}\n\n```python\ndef {name}(): ...\n```\n'}}]}

SITE = 'https://example.github.io/proj'

@pytest.mark.parametrize('head, id_', [('NoteRenderer.render', 'noterenderer.render'), ('The Epps–Pulley statistic', 'the-eppspulley-statistic'),
                                       ('`run_roll_stems` in use', 'run_roll_stems-in-use'), ('3. Checks', 'checks'), ('!!', 'section')])
def test_auto_id_is_pandocs(head, id_): assert proc.auto_id(head) == id_

def test_page_ids():
    ids = proc.page_ids([md('## Setup\n\n```python\n# not a heading\n```\n## Setup\n### Named {#own-id}'), doc('RollStemsConfig'),
                         {'cell_type': 'code', 'source': '#| label: fig-curves\nplot()', 'metadata': {}, 'outputs': []}])
    assert ids == {'setup', 'setup-1', 'own-id', 'rollstemsconfig', 'fig-curves'}

def pages(*links):
    return {'notes.html': ('07_notes.ipynb', [md('## The renderer'), doc('NoteRenderer')]),
            'music.html': ('09_music.ipynb', [md('## Stems'), md(' '.join(f'[x]({l})' for l in links))])}

@pytest.mark.parametrize('link', [f'{SITE}/notes.html#noterenderer', 'notes.html#the-renderer', '#stems', '07_notes.ipynb#noterenderer',
                                  'notes.html', 'https://github.com/x/y.html#L3', 'images/a.png'])
def test_links_that_resolve_pass(link): assert proc.check_links(pages(link), SITE) == {}

@pytest.mark.parametrize('link, why', [(f'{SITE}/notes.html#noterenderer.render', 'anchor that does not exist'),  # a method the page does not show
                                       ('#rollstemsconfig.projector', 'anchor that does not exist'),            # same page
                                       ('notes.html#_private', 'a private name'),
                                       ('07_notes.ipynb#stems', 'anchor that does not exist'),
                                       (f'{SITE}/oplas.html#run', 'page the site does not have')])
def test_links_that_point_nowhere_fail(link, why):
    bad = proc.check_links(pages(link), SITE)
    assert len(bad['09_music.ipynb']) == 1
    assert why in bad['09_music.ipynb'][0]

def test_links_in_code_are_not_links(): assert proc.check_links(pages(), SITE) == proc.check_links(
    {**pages(), 'x.html': ('x.ipynb', [md('`[a](#nowhere)`\n\n```\n[a](#nowhere)\n```')])}, SITE)

def test_md_writers():
    assert proc.md_writers({'format': {'html': {'toc': True}, 'commonmark': 'default'}}) == ['commonmark']
    assert proc.md_writers({'format': {'gfm': {'variant': '+tex_math_dollars'}, 'pdf': 'default'}}) == ['gfm+tex_math_dollars']

@pytest.mark.parametrize('tex', [r'$\frac{2}{k}\sum_i x_i$', r'$\pm 1/\sqrt{16}$', r'$$\sum_{c=0}^{11} p_c$$'])
def test_math_commonmark_cannot_write_fails(tex):
    bad = proc.check_math([md('intro'), md(f'A formula {tex} in prose.')], 'commonmark', names=['cell 0', 'cell 1'])
    assert bad == [f"cell 1: TeX math that the commonmark output cannot convert: ${tex.strip('$')}$"]

@pytest.mark.parametrize('tex', [r'$(2/k)\sum_i x_i$', r'$\pm 16^{-1/2}$', r'$$\sum\nolimits_{c=0}^{11} p_c\, e^{-2\pi i c/12}$$'])
def test_math_commonmark_can_write_passes(tex): assert proc.check_math([md(f'A formula {tex} in prose.')], 'commonmark') == []

def test_math_in_show_doc_output_is_read():
    cell = doc('f'); cell['outputs'][0]['data']['text/markdown'] += r'*Scale by $\sqrt{N}$.*'
    assert len(proc.check_math([cell], 'commonmark')) == 1

def test_cell_names_are_the_notebooks():
    src = [md('# T'), {'cell_type': 'code', 'source': '#| export\ndef f(): pass', 'metadata': {}, 'outputs': []}, md('Uses `f`.')]
    proc_cells = [src[0], src[1], doc('f'), md('Uses [`f`](https://example.github.io/proj/m.html#f).')]
    assert proc.cell_names(src, proc_cells) == ['cell 0', 'cell 1', 'the documentation cell show_doc(f)', 'cell 2']
