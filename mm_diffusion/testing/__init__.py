"""Test doubles: random-weight checkpoints for the tests, benchmarks and the docs' quick examples.

    checkpoints  ``write_random_checkpoint`` / ``write_random_sr_checkpoint`` / ``randomize_``

The product never imports this package.
"""
