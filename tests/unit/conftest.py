"""The fast engine and its transformers reference on three differently shaped tiny checkpoints."""

from __future__ import annotations

import pytest

from desktop_app.inference.fast_engine import FastEngine
from desktop_app.inference.random_checkpoint import TINY, CheckpointShape, build_random_checkpoint

SHAPES = {
    "tiny-gqa-4books": TINY,
    "mha-8books-3layers": CheckpointShape(
        num_codebooks=8,
        backbone_hidden=96,
        backbone_layers=3,
        backbone_heads=4,
        backbone_kv_heads=4,
        backbone_intermediate=160,
        depth_hidden=48,
        depth_layers=1,
        depth_heads=2,
        depth_kv_heads=2,
        depth_intermediate=96,
    ),
    "deep-depth-6books": CheckpointShape(
        num_codebooks=6,
        backbone_hidden=48,
        backbone_layers=1,
        backbone_heads=2,
        backbone_kv_heads=1,
        backbone_intermediate=96,
        depth_hidden=64,
        depth_layers=3,
        depth_heads=4,
        depth_kv_heads=2,
        depth_intermediate=128,
    ),
}


@pytest.fixture(scope="session", params=list(SHAPES))
def engines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(fast engine, its transformers reference) for each checkpoint shape."""
    folder = build_random_checkpoint(tmp_path_factory.mktemp(request.param), SHAPES[request.param])
    fast = FastEngine(folder, "cpu")
    return fast, fast.reference
