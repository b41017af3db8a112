"""MONAI networks a Clara config may name resolve and build (einops is a dependency for the transformers)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name,args", [
    ("UNETR", {"in_channels": 1, "out_channels": 2, "img_size": [16, 16, 16], "feature_size": 4,
               "hidden_size": 48, "mlp_dim": 96, "num_heads": 4}),
    ("SwinUNETR", {"in_channels": 1, "out_channels": 2, "feature_size": 12, "spatial_dims": 3}),
])
def test_transformer_networks_build_and_run(name, args):
    import torch

    from mmar_automl.train.components import lookup_name

    cls = lookup_name(name, "config_train.json", ("train", "model"))
    net = cls(**args).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 1, 64, 64, 64) if name == "SwinUNETR" else torch.zeros(1, 1, 16, 16, 16))
    assert out.shape[1] == 2
