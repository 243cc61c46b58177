"""The one-command demo (``python -m mm_diffusion.demo``, see docs/demo.md).

    run         load the shipped model, generate the three tasks, score them, write the report
    report      gap ratios against real and shuffled pairs, the pass bars, the table
    sheet       contact sheets (frames, waveform, bounce and onset marks)

Sub-modules are imported on use.
"""
