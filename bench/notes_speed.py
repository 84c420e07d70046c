"""Note-rendering benchmark: four-second notes per CPU-second, synthesis alone and the whole path to a cached note.

    python bench/notes_speed.py [--programs 8] [--pitches 25] [--soundfont PATH]

Synthesis: `NoteRenderer.render` (tinysoundfont at 48 kHz, silenced and flushed between notes).
Whole path: synthesis + resampling to 16 kHz + peak normalisation to int16 (`render_program`), as `load_notes` does
before writing its cache. Log-mel: the default frozen features of the rendered notes.
CPU time of this process is measured (one thread), so the rates hold on a shared machine.
"""
import argparse, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np, torch
from softfactor.notes import NotesConfig, NoteRenderer, render_program, logmel_features, PROGRAMS

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--programs", type=int, default=8, help="GM programs (spread over the family table)")
    p.add_argument("--pitches", type=int, default=25, help="pitches per program (MIDI 48 upward)")
    p.add_argument("--soundfont", default=None, help="SF2/SF3 file (default: TimGM6mb.sf2 from pretty_midi)")
    a = p.parse_args()
    torch.set_num_threads(1)
    cfg = NotesConfig(soundfont=a.soundfont, pitch_lo=48, pitch_hi=48 + a.pitches - 1)
    programs = PROGRAMS[::max(1, len(PROGRAMS) // a.programs)][:a.programs]
    r = NoteRenderer(cfg)
    n = len(programs) * len(cfg.pitches)
    t0 = time.process_time()
    for prog in programs:
        for pitch in cfg.pitches: r.render(prog, pitch)
    synth = time.process_time() - t0
    t0 = time.process_time()
    audio = [render_program(cfg, prog, r)['audio'] for prog in programs]
    whole = time.process_time() - t0
    x = torch.from_numpy(np.concatenate(audio).astype(np.float32) / 32767)
    t0 = time.process_time(); logmel_features(x); feats = time.process_time() - t0
    print(f"{n} notes of {cfg.held_s + cfg.release_s:.0f} s ({len(programs)} programs x {len(cfg.pitches)} pitches), {cfg.soundfont_path.name}, one thread")
    print(f"synthesis at {cfg.render_rate} Hz       {n / synth:8.0f} notes per CPU-second")
    print(f"whole path to 16 kHz int16   {n / whole:8.0f} notes per CPU-second")
    print(f"log-mel features             {len(x) / feats:8.0f} notes per CPU-second")

if __name__ == "__main__": main()
