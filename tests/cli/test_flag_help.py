"""Every flag of every job explains itself in --help."""
import contextlib
import io
import re

import pytest

from mm_diffusion.cli.flag_help import FLAG_HELP


@pytest.mark.parametrize("module", ["train", "image_sr_train", "sample", "audio2video", "video2audio"])
def test_every_flag_has_an_explanation(module):
    import importlib

    main = importlib.import_module(f"mm_diffusion.{module}").main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = out.getvalue()
    flags = set(re.findall(r"^\s+(--\w+)", text, re.M)) - {"--help", "--config"}
    assert len(flags) > 20
    unexplained = sorted(f for f in flags if f[2:] not in FLAG_HELP)
    assert not unexplained, f"python -m mm_diffusion.{module}: flags without an explanation: {unexplained}"
    assert "AdamW learning rate" in text or "sampler: ddpm" in text or "DPM-Solver steps" in text


def test_help_texts_survive_argparse_formatting():
    for key, text in FLAG_HELP.items():
        text % {}  # argparse %-formats help strings: a bare '%' would crash --help
