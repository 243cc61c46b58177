"""mm-diffusion: joint audio-video generation with diffusion models (MM-Diffusion, CVPR 2023).

Sub-packages, one job each (see docs in README.md):
  models      coupled audio-video U-Net (``MultimodalUNet``) and the 64->256 ``SuperResModel``
  diffusion   Gaussian diffusion over an AV pair, samplers (DDPM, DDIM, DPM-Solver(++)), zero-shot conditioning
  data        media I/O (PyAV), the clip dataset, the built-in synthetic audio-visual dataset
  evaluation  FVD / KVD / FAD: feature networks, metrics, the evaluation job
  cli         flags (original names), ``--config``, help texts
  runs        checkpoints, run configs, EMA, RNG state, run log, distributed set-up
  training    ``TrainLoop`` and the training tasks
  sampling    the sampling jobs (unconditional, audio->video, video->audio, super-resolution)
  demo        the one-command demo
  testing     random-weight checkpoints for tests and examples (never imported by the product)

Entry points (``python -m mm_diffusion.<job>``): train, image_sr_train, sample, audio2video, video2audio,
evaluate, demo. Architecture: docs/architecture.md.
"""

__version__ = "0.1.0"
