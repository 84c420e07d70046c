"""The 2,000-step runs of 08_pianoroll as published before the seed sweep: their numbers, kept as one row each.

    python bench/pianoroll_default_row.py [--commit adf25ac] [--out nbs/data/pianoroll_default_run.json]

Those runs (`softfactor-train --data {blobs,chorales} --steps 2000 --threads 1 --out runs/{blobs,chorales}`,
seed 0, one training seed each) lived in a git-ignored folder; what survives of them is the notebook's
committed output at --commit. This reads the two tables of that output (the measures of `results_table`
and the augmentation test) and writes them as JSON, so the notebook can show them as a separate,
single-seed row without reading anything outside the repository.
"""
import argparse, json, re, subprocess

def tables(nb):
    "Every Markdown table in the outputs of a notebook: list of (header, rows)."
    out = []
    for c in nb['cells']:
        for o in c.get('outputs', []):
            text = ''.join(o.get('data', {}).get('text/markdown', '')) or ''.join(o.get('data', {}).get('text/plain', ''))
            lines = [l for l in text.splitlines() if l.startswith('|')]
            if len(lines) > 2: out.append(([h.strip() for h in lines[0].strip('|').split('|')], [[x.strip() for x in l.strip('|').split('|')] for l in lines[2:]]))
    return out

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--commit', default='adf25ac')
    p.add_argument('--out', default='nbs/data/pianoroll_default_run.json')
    a = p.parse_args()
    nb = json.loads(subprocess.run(['git', 'show', f'{a.commit}:nbs/08_pianoroll.ipynb'], capture_output=True, text=True, check=True).stdout)
    found = {}
    for head, rows in tables(nb):
        if head[:3] == ['measure', 'blobs', 'chorales']: found['measures'] = {r[0]: {'blobs': float(r[1]), 'chorales': float(r[2])} for r in rows}
        if head[0].startswith('ratio: median') and head[1:] == ['blobs', 'chorales']:
            num = lambda s: [float(x) for x in re.findall(r'-?\d+\.?\d*', s)]
            found['augmentation'] = {r[0]: {k: num(v) for k, v in zip(head[1:], r[1:])} for r in rows}
    found['source'] = {'commit': a.commit, 'steps': 2000, 'seed': 0, 'threads': 1,
                       'commands': ['softfactor-train --data blobs --steps 2000 --threads 1 --out runs/blobs',
                                    'softfactor-train --data chorales --steps 2000 --threads 1 --out runs/chorales'],
                       'measured_by': 'analyze(n=500, grid_items=64), augmentation_disentanglement(n=500), as in 08_pianoroll'}
    with open(a.out, 'w') as f: json.dump(found, f, indent=1)
    print(f"{a.out}: {len(found.get('measures', {}))} measures, {len(found.get('augmentation', {}))} augmentation rows from {a.commit}")

if __name__ == '__main__': main()
