"""`nbdev-proc-nbs` without Quarto: the same processing of the notebooks for the site (front matter,
directives, show_doc, sidebar), minus the step that downloads Quarto, which cannot be installed here.
Then checks what a reader of the rendered site would otherwise meet, page by page:

- front matter: title, description, date, categories and an existing thumbnail, as the blog listing needs;
- one title and one description per page: no `# Title` / `> description` left in the page body;
- descriptions no longer than the listing shows (`max-description-length` of the index's listing);
- no notebook over 1 MB;
- rendered signatures without `__main__.` or an inferred `NoneType`;
- no links to anchors that do not exist (nbdev links private names to `#_name`, a heading id Quarto never makes);
- no pseudo-TeX (`e^{…}`, `x_{…}`) in prose: formulas are `$…$` math;
- the navbar's links and `repo-subdir` point at the notebooks, and the `pre-render` step writes the resources
  the site lists (run here as Quarto would run it)."""
import json, re, shlex, subprocess, sys, yaml, nbdev.quarto as q
from pathlib import Path

MAX_NB_BYTES = 1_000_000

def _md(cell):
    src = cell.get('source') or ''
    return ''.join(src) if isinstance(src, list) else src

def _outputs_md(cell):
    for o in cell.get('outputs', []):
        md = o.get('data', {}).get('text/markdown')
        if md: yield ''.join(md) if isinstance(md, list) else md

def _prose(text):
    "Markdown without fenced code, inline code and `$…$` math: what is left is read as prose."
    text = re.sub(r'```.*?```', '', text, flags=re.S)
    text = re.sub(r'\$\$.*?\$\$', '', text, flags=re.S)
    text = re.sub(r'`[^`]*`', '', text)
    return re.sub(r'\$[^$\n]+\$', '', text)

def check_page(nb_path, out_path, max_desc, root):
    "Problems a reader would meet on the page rendered from `out_path` (processed from `nb_path`)."
    bad = []
    if nb_path.stat().st_size > MAX_NB_BYTES: bad.append(f"{nb_path.stat().st_size / 1e6:.1f} MB (over 1 MB)")
    cells = json.loads(out_path.read_text())['cells']
    fm = next((c for c in cells if c['cell_type'] == 'raw'), None)
    meta = (yaml.safe_load(_md(fm).strip().strip('-')) if fm else {}) or {}
    missing = {'title', 'description', 'date', 'categories', 'image'} - set(meta)
    if missing: bad.append(f"front matter lacks {sorted(missing)}")
    if 'image' in meta and not (root / meta['image']).exists(): bad.append(f"thumbnail {meta['image']} missing")
    if len(str(meta.get('description', ''))) > max_desc:
        bad.append(f"description of {len(meta['description'])} characters, the listing shows {max_desc}")
    for c in cells:
        if c['cell_type'] != 'markdown': continue
        text = _md(c)
        if re.search(r'^# \S', _prose(text), re.M): bad.append(f"a second title in the page: {text.splitlines()[0]!r}")
        if re.search(r'^> \S', text, re.M) and 'description' in meta and meta['description'] in text:
            bad.append("the description repeated in the page body")
        if m := re.search(r'[A-Za-z)\]]\^\{|[A-Za-z]_\{|\be\^[−-]|\b[A-Za-z]_[0-9a-z]\b', _prose(text)): bad.append(f"pseudo-TeX in prose: {m[0]!r} (use $…$)")
    for c in cells:
        for md in ([_md(c)] if c['cell_type'] == 'markdown' else []) + list(_outputs_md(c)):
            for link in re.findall(r'\]\(([^)\s]*\.html#_[^)\s]*)\)', md): bad.append(f"link to a private name's anchor: {link}")
            if c['cell_type'] == 'code':
                for leak in sorted(set(re.findall(r'__main__\.\w+|\w+:NoneType', md))): bad.append(f"rendered signature shows {leak}")
    return bad

def check_site(cfg, root, cache):
    "Problems with the site configuration: navbar links, repo-subdir, pre-render resources."
    bad = []
    web, proj = cfg.get('website', {}), cfg.get('project', {})
    for item in (web.get('navbar', {}).get('left', []) + web.get('navbar', {}).get('right', [])):
        for sub in item.get('menu', []) if isinstance(item, dict) else []:
            href = sub.get('href') if isinstance(sub, dict) else sub
            if not href or not (root / href).exists(): bad.append(f"navbar menu item {sub!r} is not a link to a page's source")
    if web.get('repo-subdir') != root.name: bad.append(f"website: repo-subdir is {web.get('repo-subdir')!r}, the notebooks are in {root.name!r}")
    scripts = proj.get('pre-render', [])
    for cmd in [scripts] if isinstance(scripts, str) else scripts:
        r = subprocess.run(shlex.split(cmd), cwd=cache, capture_output=True, text=True)
        if r.returncode: bad.append(f"pre-render {cmd!r} failed: {r.stderr.strip()[-300:]}")
    for res in proj.get('resources', []):
        if not (Path(cache) / res).exists(): bad.append(f"resource {res} is missing after pre-render")
    return bad

def main():
    q._ensure_quarto = lambda: None  # rendering needs Quarto; processing does not
    cache, cfg, path = q._pre_docs()
    cache, path = Path(cache), Path(path)
    site = yaml.safe_load((path / '_quarto.yml').read_text())
    index = json.loads((path / 'index.ipynb').read_text())['cells'][0]
    listing = yaml.safe_load(_md(index).strip().strip('-')).get('listing', {})
    max_desc = listing.get('max-description-length', 175)
    bad = [f"site: {b}" for b in check_site(site, path, cache)]
    for nb in sorted(path.glob('[0-9]*.ipynb')):
        out = cache / nb.name
        problems = check_page(nb, out, max_desc, path) if out.exists() else ["not processed"]
        bad += [f"{nb.name}: {b}" for b in dict.fromkeys(problems)]
    print(f"processed {len(list(cache.glob('*.ipynb')))} notebooks into {cache}")
    if bad: sys.exit("site check failed:\n" + "\n".join(bad))
    print("site check passed")

if __name__ == "__main__": main()
