"""Command-line plumbing shared by every job.

    flags       defaults dicts -> argparse flags (original names), ``--config NAME``, flags -> model kwargs,
                model / diffusion factories
    flag_help   the ``--help`` text of every flag (``FLAG_HELP``)
    errors      ``run_cli(job)``: the one command-line wrapper (one-line errors, exit status 2)

Sub-modules are imported on use so that importing one job does not pull in the others.
"""
