"""softfactor: geometry in latent space. The main names of every module, importable from the package itself
(`from softfactor import train, TrainConfig, BlobSource`); each module is imported only when one of its names is
first used, so `import softfactor` stays fast. This file is written by hand; nbdev generates the modules."""
__version__ = "0.2.0"

_API = {
    'base': ('Source', 'Triplets', 'pick_device', 'check_int', 'check_float'),
    'blobs': ('BlobSource', 'make_blob', 'blob_batch', 'shift_batch', 'shift_views', 'blob_triplet_batch', 'margin_blobs'),
    'encoder': ('ToyEncoder', 'ENCODERS', 'make_encoder', 'embed'),
    'factorization': ('factorization_loss', 'difference_cosines'),
    'lejepa': ('LeJEPA', 'SIGReg', 'attraction_loss'),
    'protocol': ('difference_vectors', 'cosine_report', 'evaluate_encoder', 'CentroidEncoder', 'TARGETS', 'meets_targets'),
    'training': ('TrainConfig', 'published_config', 'train', 'Callback', 'Learner', 'SOURCES', 'make_source',
                 'load_encoder', 'load_checkpoint', 'TrainingInterrupted', 'NonFiniteLossError'),
    'analysis': ('analyze', 'shift_grid', 'grid_svd', 'sign_asymmetry', 'shift_probes', 'mig', 'dci'),
    'oplas': ('vicreg_loss', 'FiLMR', 'run_mixing', 'run_stargate', 'MixingConfig', 'StargateConfig'),
    'notes': ('NotesConfig', 'load_notes', 'note_features', 'linear_probe', 'FAMILY_PROGRAMS', 'SpecMAE'),
    'multiview': ('MultiViewAE', 'RunConfig', 'SweepConfig', 'run_sweep', 'write_report', 'findings'),
    'pianoroll': ('PianoRollSource', 'Piece', 'load_corpus', 'load_midi_folder', 'load_pieces'),
    'oplas_music': ('ChoraleVoices', 'RollStemsConfig', 'run_roll_stems', 'AudioStemsConfig', 'run_audio_stems',
                    'FifthsConfig', 'run_fifths', 'fifths_metrics', 'transpose_fifths'),
}
_WHERE = {name: mod for mod, names in _API.items() for name in names}
__all__ = sorted(_WHERE)

def __getattr__(name):
    if name not in _WHERE: raise AttributeError(f"module 'softfactor' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f'softfactor.{_WHERE[name]}'), name)
    globals()[name] = value
    return value

def __dir__(): return sorted({*globals(), *__all__})
