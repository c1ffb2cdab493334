"""8- and 4-bit weights for the fast engine on the CPU: packed block-wise, multiplied by MLAS.

On a CPU a frame is bound by reading the weights (about 4.5 G of them per frame for CSM-1B):
fewer bytes per weight is the only way to a faster frame. The products run as onnxruntime's
``MatMulNBits`` operator (its MLAS kernels: AVX2, AVX-512 and VNNI on x86, NEON on ARM, chosen
at run time, no compiler needed on the user's machine): weights in blocks of ``block`` along the
input with one float32 scale per block, activations quantized to int8 per block on the fly
(``accuracy_level=4``). Why not torch's own (benchmarks/results/cpu-kernels.json, measured side
by side): fbgemm's dynamic int8 is as fast but is built on ``qint8`` tensors, which torch 2.13
deprecates (pytorch issue 184982); ``_weight_int8pack_mm``, ``_weight_int4pack_mm_for_cpu``,
``_int_mm``, oneDNN's ``qlinear_pointwise`` and torchao 0.18's CPU configurations all ran slower
than float32 for one row, uncompiled, on this AVX2 machine.

One ``Linear`` is one small onnxruntime session holding one packed matrix. A row's activations
are quantized on their own (per row and block), so a row of a batch is the same arithmetic as
the row alone: tests/unit/test_cpu_weights.py checks that rows of a batch equal the rows alone,
bit for bit.

onnxruntime and onnx are imported only here, and only when packed weights are made or loaded:
the inference package still imports with torch, transformers and numpy alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

FORMATS = ("int8", "int4")
"""The packed formats; "none" (float32) is the third setting, handled by the caller."""

BITS = {"int8": 8, "int4": 4}

BLOCK = {"int8": 128, "int4": 32}
"""Weights per scale along a row (benchmarks/cpu_weights.py measures the alternatives: int8
per 128 ran faster than per 32 at the same error; int4 per 32 is GGUF q4_0's choice and keeps
int4's error near int8's)."""


@dataclass(frozen=True)
class PackedWeight:
    """A matrix (out, in) in ``bits`` per weight: what the cache stores and a session reads.

    ``codes`` is uint8 (out, in / block, block * bits / 8), the codes offset to be unsigned
    (zero at 128 for 8 bits, 8 for 4: ``MatMulNBits``' implicit zero points), two 4-bit codes
    per byte low nibble first; ``scales`` is float32 (out, in / block).
    """

    codes: torch.Tensor
    scales: torch.Tensor
    bias: torch.Tensor | None
    bits: int
    block: int

    @property
    def out_features(self) -> int:
        return int(self.codes.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.scales.shape[1]) * self.block

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        """This weight as named tensors (for the cache file)."""
        found = {f"{name}.codes": self.codes, f"{name}.scales": self.scales}
        if self.bias is not None:
            found[f"{name}.bias"] = self.bias
        return found

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, torch.Tensor], name: str, bits: int, block: int
    ) -> PackedWeight:
        """The weight ``name`` from named tensors (KeyError if a part is missing)."""
        return cls(
            tensors[f"{name}.codes"],
            tensors[f"{name}.scales"],
            tensors.get(f"{name}.bias"),
            bits,
            block,
        )

    def dequantized(self) -> torch.Tensor:
        """The float32 matrix these codes stand for (tests and error figures only)."""
        codes = self.codes
        if self.bits == 4:
            codes = torch.stack([codes & 0x0F, codes >> 4], dim=-1).flatten(-2)
        zero = 1 << (self.bits - 1)
        values = (codes.to(torch.float32) - zero) * self.scales[..., None]
        return values.reshape(self.out_features, self.in_features)


def block_for(fmt: str, in_features: int) -> int:
    """The block size of ``fmt`` for a matrix with ``in_features`` columns."""
    block = BLOCK[fmt]
    while in_features % block:  # MatMulNBits wants whole blocks (powers of two from 16)
        block //= 2
    if block < 16:
        raise ValueError(f"{in_features} input features do not split into blocks of 16")
    return block


def pack(weight: torch.Tensor, bias: torch.Tensor | None, fmt: str) -> PackedWeight:
    """Quantize ``weight`` (out, in) symmetrically per block (scale = the block's largest
    magnitude over the largest code), in slices of rows so that only a slice is ever float."""
    bits = BITS[fmt]
    out_features, in_features = weight.shape
    block = block_for(fmt, in_features)
    top = (1 << (bits - 1)) - 1  # 127 or 7: codes -top..top, symmetric around zero
    blocks = in_features // block
    codes = torch.empty(out_features, blocks, block * bits // 8, dtype=torch.uint8)
    scales = torch.empty(out_features, blocks, dtype=torch.float32)
    step = max(1, (1 << 22) // in_features)  # ~16 MB of float32 per slice
    with torch.no_grad():
        for start in range(0, out_features, step):
            rows = weight[start : start + step].detach().to(torch.float32)
            grouped = rows.reshape(rows.shape[0], blocks, block)
            scale = (grouped.abs().amax(-1) / top).clamp(min=torch.finfo(torch.float32).tiny)
            q = torch.round(grouped / scale[..., None]).clamp(-top, top).to(torch.int16)
            unsigned = (q + top + 1).to(torch.uint8)
            if bits == 4:
                unsigned = unsigned[..., 0::2] | (unsigned[..., 1::2] << 4)
            codes[start : start + step] = unsigned
            scales[start : start + step] = scale
    kept_bias = None if bias is None else bias.detach().to(torch.float32).clone()
    return PackedWeight(codes, scales, kept_bias, bits, block)


@functools.cache
def _onnx_modules() -> tuple[Any, Any]:
    import onnx
    import onnxruntime

    return onnx, onnxruntime


def _external(onnx: Any, name: str, array: np.ndarray, dtype: int) -> Any:
    """An initializer whose data the session is handed in memory (not copied into the graph)."""
    tensor = onnx.TensorProto()
    tensor.name, tensor.data_type = name, dtype
    tensor.dims.extend(array.shape)
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", f"{name}.bin"  # never read: the data is given
    return tensor


def _session(weight: PackedWeight, threads: int) -> tuple[Any, list[Any]]:
    """An onnxruntime session computing ``A @ W.T`` for the packed ``weight``, and the values
    it was handed (they must live as long as the session).

    The codes and scales are handed over as external initializers, so the session holds only
    its prepacked copy (measured: 1.15x the codes' bytes, against 2.1x for int8 when they are
    embedded in the graph, which onnxruntime keeps beside the prepacked copy).
    """
    onnx, ort = _onnx_modules()
    helper = onnx.helper
    k, n = weight.in_features, weight.out_features
    node = helper.make_node(
        "MatMulNBits",
        ["A", "B", "scales"],
        ["Y"],
        domain="com.microsoft",
        K=k,
        N=n,
        bits=weight.bits,
        block_size=weight.block,
        accuracy_level=4,  # int8 activations: the integer kernels
    )
    codes = weight.codes.numpy()
    scales = weight.scales.reshape(-1).numpy()
    graph = helper.make_graph(
        [node],
        "linear",
        [helper.make_tensor_value_info("A", onnx.TensorProto.FLOAT, ["rows", k])],
        [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, ["rows", n])],
        initializer=[
            _external(onnx, "B", codes, onnx.TensorProto.UINT8),
            _external(onnx, "scales", scales, onnx.TensorProto.FLOAT),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # no arena per session: hundreds of sessions each kept its largest output (a prefill's)
    options.enable_cpu_mem_arena = False
    # no spinning after a product: one pool per product (hundreds) would spin at once; spinning
    # measured 5-8 s/frame here (benchmarks/results/README.md)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in (codes, scales)]
    options.add_external_initializers(["B", "scales"], values)
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session, [options, *values]


class PackedLinear:
    """``x @ W.T + b`` over a :class:`PackedWeight` (a :data:`decoder.Linear`)."""

    def __init__(self, weight: PackedWeight, threads: int | None = None) -> None:
        self.in_features, self.out_features = weight.in_features, weight.out_features
        self.bits = weight.bits
        # a copy: a view would keep the cache file mapped (and its pages resident)
        self.bias = None if weight.bias is None else weight.bias.clone()
        self._session, self._handed = _session(weight, threads or torch.get_num_threads())
        self._codes = weight.codes  # what the handed values point into: kept alive with them

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).to(torch.float32).contiguous()
        (out,) = self._session.run(None, {"A": flat.numpy()})
        y = torch.from_numpy(np.asarray(out)).reshape(*x.shape[:-1], self.out_features)
        if self.bias is not None:
            y = y + self.bias
        return y.to(x.dtype)
