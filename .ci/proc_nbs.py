"""`nbdev-proc-nbs` without Quarto: the same processing of the notebooks for the site (front matter,
directives, show_doc, sidebar), minus the step that downloads Quarto, which cannot be installed here.
Checks that every notebook came out with the front matter the blog listing needs."""
import json, sys, yaml, nbdev.quarto as q
from pathlib import Path

def main():
    q._ensure_quarto = lambda: None  # rendering needs Quarto; processing does not
    cache, cfg, path = q._pre_docs()
    needed = {"title", "description", "date", "categories", "image"}
    bad = []
    for nb in sorted(Path(path).glob("[0-9]*.ipynb")):
        out = Path(cache) / nb.name
        if not out.exists(): bad.append(f"{nb.name}: not processed"); continue
        text = out.read_text()
        cells = json.loads(text)["cells"]
        fm = next((c for c in cells if c["cell_type"] == "raw"), None)
        meta = yaml.safe_load("".join(fm["source"]).strip().strip("-")) if fm else {}
        missing = needed - set(meta or {})
        if missing: bad.append(f"{nb.name}: front matter lacks {sorted(missing)}")
        elif not (Path(path) / meta["image"]).exists(): bad.append(f"{nb.name}: thumbnail {meta['image']} missing")
    print(f"processed {len(list(Path(cache).glob('*.ipynb')))} notebooks into {cache}")
    if bad: sys.exit("site check failed:\n" + "\n".join(bad))

if __name__ == "__main__": main()
