"""Sampling: the jobs behind ``mm_diffusion.sample`` / ``.audio2video`` / ``.video2audio``.

    runner       the jobs end to end (``sample`` / ``audio2video`` / ``video2audio``): checkpoints -> models -> batches -> files, across ranks, resumable
    args         the sampling flags, completed from a checkpoint's saved run config
    generate     seeded noise and labels per sample index, one call to the samplers (``generate_av``)
    conditional  reference clips (``ConditionSource``) and zero-shot audio->video / video->audio generation
    sr_stage     the 64 -> 256 super-resolution stage (``SRStage``)
    layout       output folders and file names, which samples are complete, batches per rank
    writer       writing one sample's files

Sub-modules are imported on use.
"""
