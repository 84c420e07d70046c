"""Rewrite nbs/data/oplas_music_aisfx.json: the audio stems through the pretrained aisfx encoder and log-mel.

    python bench/oplas_music_aisfx.py [--out nbs/data/oplas_music_aisfx.json]

Needs the optional `aisfx` package, which the README's install does not provide; the notebook reads the
committed file instead of running this. Same run as
`softfactor-oplas audio-stems --assignments winds --features logmel,aisfx --n-train 512 --n-eval 256 --seeds 0,1,2`
(about 10 CPU-minutes with an empty feature cache, most of it aisfx), on one thread.
"""
import argparse, json
from pathlib import Path
import torch

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default='nbs/data/oplas_music_aisfx.json')
    a = p.parse_args()
    torch.set_num_threads(1)
    from softfactor.oplas_music import AudioStemsConfig, ChoraleVoices, run_audio_stems, _chorales
    cfg = AudioStemsConfig(assignments=('winds',), features=('logmel', 'aisfx'), n_train=512, n_eval=256, seeds=(0, 1, 2))
    res = run_audio_stems(ChoraleVoices(_chorales()), cfg)
    r3 = lambda x: round(x, 3)
    runs = [dict(assignment=r['assignment'], feature=r['feature'], seed=r['seed'],
                 raw={k: r3(r['raw'][k]) for k in ('top1', 'rel_error')}, projected={k: r3(r['projected'][k]) for k in ('top1', 'rel_error')})
            for r in res['runs']]
    summary = {g: {side: {k: dict(mean=r3(s[side][k]), sd=r3(s[side][k + '_std'])) for k in ('cos_centered', 'rel_error', 'top1', 'top1_cos')}
                   for side in ('raw', 'projected')} for g, s in res['summary'].items()}
    d = dict(what="Audio stems through the pretrained aisfx encoder and log-mel, wind quartet, 512 training and 256 held-out excerpts "
                  "(data_seed 0), projector seeds 0, 1, 2; three decimals.",
             command="python bench/oplas_music_aisfx.py", provenance="written by bench/oplas_music_aisfx.py",
             config={k: res['config'][k] for k in ('assignments', 'features', 'n_train', 'n_eval', 'eval_batch', 'steps', 'seeds', 'data_seed')},
             runs=runs, summary=summary, feature_time_s=res['feature_time_s'])
    Path(a.out).write_text(json.dumps(d, indent=1) + '\n')

if __name__ == '__main__': main()
