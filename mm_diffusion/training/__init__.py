"""Training: the loop and what the two training jobs (``mm_diffusion.train``, ``mm_diffusion.image_sr_train``) share.

    jobs        the two jobs: ``train(argv)`` (audio-video) and ``train_sr(argv)`` (super-resolution)
    loop        ``TrainLoop``: AdamW, EMA, autocast, microbatching, exact resume, DDP; ``TrainConfig``
    tasks       what is trained: ``AVTask`` (joint audio-video) and ``SRTask`` (64 -> 256 frames)
    args        training flags, output-folder checks, the run's ``config.json``, flags -> ``TrainConfig``
    sr_data     single frames from clips for the super-resolution model

Sub-modules are imported on use.
"""
