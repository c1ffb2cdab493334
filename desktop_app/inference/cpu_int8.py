"""int8 weights for the fast engine on the CPU.

On a CPU a frame is bound by reading the weights: CSM-1B reads about 6 GB of float32 per frame.
Stored as int8 (one scale per output row), the backbone's and depth decoder's matrix products
read a quarter of that. The products run as torch's dynamic quantization: int8 weights, the
activations quantized on the fly, fbgemm/oneDNN kernels, all in the CPU wheel of torch itself.
torchao (the newer home of this) is a separate package pinned to each torch release; torch's
own kernels need nothing more, which is why they are used here. Their creation functions warn
that they are deprecated; that one warning is silenced where the weights are made, and the
measurements in benchmarks/results/cpu-int8.json say what they buy.

Quantized: QKV, attention output, gate/up and down of every layer of both stacks, the
codebook-0 head, the 31 codebook heads and the depth decoder's input projection. The
embeddings, the norms and the Mimi codec stay in float32. The float weights stay too (the
transformers reference and the self-test share them): measured, the process grows from 5.8 to
9.8 GB with the full model.

The activations are quantized on the fly with one scale per product call. A batch (a long text,
``batch``) therefore quantizes its rows together, and a row is not bit-identical to the same
take made alone, as it is in float32; every run is still reproducible.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

Linear = Callable[[torch.Tensor], torch.Tensor]
"""A matrix product as the frame loop calls it (the fast engine's ``Linear``)."""


def int8_linear(weight: torch.Tensor, bias: torch.Tensor | None = None) -> Linear:
    """``x @ weight.T + bias`` with ``weight`` stored as int8, one scale per output row."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    w = weight.detach().to(torch.float32).contiguous()
    out_features, in_features = w.shape
    scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12).to(torch.float64)
    zero_points = torch.zeros(out_features, dtype=torch.long)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"torch\.quantize_per_tensor", category=UserWarning
        )
        qweight = torch.quantize_per_channel(w, scales, zero_points, 0, torch.qint8)
    product = DynamicLinear(in_features, out_features, dtype=torch.qint8)
    product.set_weight_bias(qweight, None if bias is None else bias.detach().to(torch.float32))
    return product
