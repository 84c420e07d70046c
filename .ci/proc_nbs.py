"""`nbdev-proc-nbs` without Quarto: the same processing of the notebooks for the site (front matter,
directives, show_doc, sidebar), minus the step that downloads Quarto, which cannot be installed here.
Then checks what a reader of the rendered site would otherwise meet, page by page:

- front matter: title, description, date, categories and an existing thumbnail, as the blog listing needs;
- one title and one description per page: no `# Title` / `> description` left in the page body;
- descriptions no longer than the listing shows (`max-description-length` of the index's listing);
- no notebook over 1 MB;
- rendered signatures without `__main__.` or an inferred `NoneType`;
- no links to pages or anchors that do not exist: every `page.html#anchor` (relative, or under the site's own
  address) and every same-page `#anchor` names a page of the site and an id that page will have (a heading's
  id as pandoc makes it, a show_doc heading, an explicit `{#id}`, a cell's `label`). nbdev links every exported
  name to `page.html#name` whether or not that page shows its documentation, and private names to `#_name`;
- every TeX expression converts in each extra Markdown format of the site (`commonmark` here): pandoc's Markdown
  writers turn math into text and, where they cannot (`\\frac`, `\\sqrt`, a `\\sum` with both limits), Quarto
  warns "Could not convert TeX math"; each page's Markdown goes through the same pandoc conversion;
- no pseudo-TeX (`e^{…}`, `x_{…}`) in prose: formulas are `$…$` math;
- the navbar's links and `repo-subdir` point at the notebooks, and the `pre-render` step writes the resources
  the site lists (run here as Quarto would run it)."""
import json, re, shlex, subprocess, sys, yaml, nbdev.quarto as q
from urllib.parse import urlsplit
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
            if c['cell_type'] == 'code':
                for leak in sorted(set(re.findall(r'__main__\.\w+|\w+:NoneType', md))): bad.append(f"rendered signature shows {leak}")
    return bad

def _fenced_out(text): return re.sub(r'^(```|~~~).*?^\1', '', text, flags=re.S | re.M)

def auto_id(text):
    "The id pandoc's `auto_identifiers` gives a heading with this text."
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)       # a link or image: its text
    text = re.sub(r'<[^>]+>|[`*]', '', text)                     # HTML tags, code and emphasis marks
    s = ''.join(ch for ch in text if ch.isalnum() or ch in '_-.' or ch.isspace())
    s = re.sub(r'\s+', '-', s.strip()).lower()
    while s and not s[0].isalpha(): s = s[1:]                   # ids start at the first letter
    return s or 'section'

def _unlinked(cell):
    "A cell's source as the notebook has it: no nbdev doc links, no `#|` directives."
    s = re.sub(r'\[(`[^`]+`)\]\([^)\s]*\)', r'\1', _md(cell))
    return cell['cell_type'], '\n'.join(l for l in s.splitlines() if not l.startswith('#|')).strip()

def cell_names(src_cells, cells):
    "How to find each processed cell in the notebook: `cell N` (its index there), `show_doc(X)`, or `processed cell N`."
    index = {}
    for i, c in enumerate(src_cells): index.setdefault(_unlinked(c), i)
    def name(j, c):
        if (i := index.get(_unlinked(c))) is not None: return f"cell {i}"
        if m := re.match(r'show_doc\(([^)]*)\)', _unlinked(c)[1]): return f"the documentation cell {m[0]}"
        return f"processed cell {j}"
    return [name(j, c) for j, c in enumerate(cells)]

def _page_texts(cells):
    "(cell index, Markdown) of everything on a page that pandoc reads as Markdown: prose and show_doc output."
    for i, c in enumerate(cells):
        if c['cell_type'] == 'markdown': yield i, _md(c)
        elif c['cell_type'] == 'code':
            for md in _outputs_md(c): yield i, md

ID_ATTR = re.compile(r"""\bid=["']([^"']+)["']""")

def page_ids(cells):
    "The ids the rendered page will have: headings (explicit or pandoc's), `{#id}` blocks, cells' `label`s."
    ids, seen = set(), {}
    for _, text in _page_texts(cells):
        text = _fenced_out(text)
        for m in re.finditer(r'^#{1,6}[ \t]+(.+?)[ \t#]*$', text, re.M):
            head, attrs = re.match(r'(.*?)\s*(?:\{([^}]*)\})?$', m[1]).groups()
            if attrs and (explicit := re.search(r'(?:^|\s)#([^\s}]+)', attrs)): ids.add(explicit[1]); continue
            base = auto_id(head)
            n = seen.get(base, 0); seen[base] = n + 1
            ids.add(base if n == 0 else f"{base}-{n}")
        ids.update(re.findall(r'\{[^}\n]*?(?<![\w"\'])#([A-Za-z][\w:.-]*)', text))
        ids.update(ID_ATTR.findall(text))
    for c in cells:
        if c['cell_type'] == 'code': ids.update(re.findall(r'^#\|\s*label:\s*(\S+)', _md(c), re.M))
    return ids

HREF = re.compile(r"""\bhref=["']([^"']+)["']""")

def _links(text):
    "Link targets in Markdown (`[t](url)`, `<a href>`), outside fenced and inline code."
    text = re.sub(r'`[^`\n]*`', '', _fenced_out(text))
    return re.findall(r'\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)', text) + HREF.findall(text)

def check_links(pages, site_url, names=None):
    """Links to pages or anchors the site will not have, as {notebook: [problem, …]}. `pages`: {page file
    (`notes.html`): (notebook name, processed cells)}; a notebook's own name (`07_notes.ipynb`) names its page
    too. `site_url`: the site's own address (links under it are checked like relative ones). `names`: {notebook:
    `cell_names`}, to say where each link is."""
    ids = {page: page_ids(cells) for page, (_, cells) in pages.items()}
    by_nb = {nb: page for page, (nb, _) in pages.items()}
    names = names or {}
    base = site_url.rstrip('/') + '/'
    bad = {}
    for page, (nb, cells) in pages.items():
        for i, text in _page_texts(cells):
            for link in _links(text):
                url = link[len(base):] if link.startswith(base) else link
                parts = urlsplit(url)
                if parts.scheme or parts.netloc or url.startswith('/'): continue
                target = by_nb.get(parts.path, parts.path) if parts.path else page
                if not target.endswith('.html'): continue
                if target not in ids: problem = f"link to a page the site does not have: {link}"
                elif parts.fragment and parts.fragment not in ids[target]:
                    why = (" (a private name: nbdev links it to #_name, which Quarto never makes)" if parts.fragment.startswith('_')
                           else f" ({target} has no heading or shown documentation with that id)")
                    problem = f"link to an anchor that does not exist: {link}{why}"
                else: continue
                where = names[nb][i] if nb in names else f"processed cell {i}"
                bad.setdefault(nb, []).append(f"{where}: {problem}")
    return bad

MD_WRITERS = {'commonmark', 'commonmark_x', 'gfm', 'markdown', 'markdown_strict', 'markdown_mmd', 'markdown_phpextra',
              'markdown_github', 'md'}

def md_writers(site):
    "The pandoc writers of the site's extra Markdown formats (`format: {commonmark: default}` gives ['commonmark'])."
    out = []
    for name, opts in (site.get('format') or {}).items():
        if re.split(r'[+-]', name)[0] not in MD_WRITERS: continue
        variant = opts.get('variant', '') if isinstance(opts, dict) else ''
        out.append(re.sub(r'^md\b', 'markdown', name) + variant)
    return out

def check_math(cells, writer, names=None, pandoc=None):
    """TeX expressions on a page that pandoc's `writer` cannot convert, as `cell N: … $…$` (`names`: `cell_names`).
    The page's Markdown is read as pandoc Markdown, as Quarto reads it, and written to `writer`, where pandoc warns
    "Could not convert TeX math"."""
    if pandoc is None:
        import pypandoc   # from pypandoc-binary (the `dev` extra), which carries its own pandoc
        pandoc = pypandoc.get_pandoc_path()
    texts = list(_page_texts(cells))
    r = subprocess.run([pandoc, '--from', 'markdown', '--to', writer, '--wrap=none'], input='\n\n'.join(t for _, t in texts),
                       capture_output=True, text=True)
    if r.returncode: return [f"pandoc --to {writer} failed: {r.stderr.strip()[-300:]}"]
    bad = []
    for expr in re.findall(r'^\[WARNING\] Could not convert TeX math (.*?), rendering as TeX', r.stderr, re.M | re.S):
        where = next((f"{names[i] if names else f'processed cell {i}'}: " for i, t in texts if expr in t), '')
        bad.append(f"{where}TeX math that the {writer} output cannot convert: ${expr}$")
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
    pages, names = {}, {}
    for out in sorted(cache.glob('*.ipynb')):
        cells = json.loads(out.read_text())['cells']
        fm = next((c for c in cells if c['cell_type'] == 'raw'), None)
        meta = (yaml.safe_load(_md(fm).strip().strip('-')) if fm else {}) or {}
        pages[meta.get('output-file', out.stem + '.html')] = (out.name, cells)
        if (path / out.name).exists(): names[out.name] = cell_names(json.loads((path / out.name).read_text())['cells'], cells)
    links = check_links(pages, cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/'), names)
    writers = md_writers(site)
    for name, cells in sorted((n, c) for n, c in pages.values()):
        nb, out = path / name, cache / name
        problems = check_page(nb, out, max_desc, path) if name[0].isdigit() else []
        for w in writers: problems += check_math(cells, w, names.get(name))
        bad += [f"{name}: {b}" for b in dict.fromkeys(problems + links.get(name, []))]
    bad += [f"{nb.name}: not processed" for nb in sorted(path.glob('[0-9]*.ipynb')) if not (cache / nb.name).exists()]
    print(f"processed {len(list(cache.glob('*.ipynb')))} notebooks into {cache}")
    if bad: sys.exit("site check failed:\n" + "\n".join(bad))
    print("site check passed")

if __name__ == "__main__": main()
