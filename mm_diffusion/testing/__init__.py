"""Test doubles: random-weight checkpoints for the tests, benchmarks and the docs' quick examples.

    checkpoints  ``write_random_checkpoint`` / ``write_random_sr_checkpoint`` / ``randomize_``
    encoders     random-weight I3D / AudioCLIP / VGGish files in the published formats

The product never imports this package.
"""
