"""What a run leaves on disk and needs to continue: checkpoints, EMA, RNG state, logs, processes.

    checkpoint  atomic checkpoint writes, safe loading, tolerant weight loading, checkpoint names and steps
    locate      find checkpoints (``--multimodal_model_path`` specs, newest run, shipped demo) and a run's config
    ema         exponential moving averages of the weights and ``--ema_rate`` parsing
    rng         seeding and saving / restoring every RNG
    files       the one JSON writer (atomic) and ``jsonable``
    log         a run's log file, ``progress.csv`` and progress bar (``RunLog``)
    dist        process groups under torchrun / mpiexec / one process, rank helpers, collectives

Sub-modules are imported on use.
"""
