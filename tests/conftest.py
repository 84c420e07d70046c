import os, pathlib, sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
os.environ.setdefault("MPLBACKEND", "Agg")
