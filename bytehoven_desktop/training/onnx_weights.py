"""A released ONNX model back into a trainable ResNet50: the start of a later training stage.

The released file is all that survives of a lineage on a fresh machine (checkpoints live under the
git-ignored ``runs/``). Its export folded every BatchNorm into the convolution before it, so each
conv arrives as weight W' and bias b'. The network is rebuilt with the conv holding W' and its BN
re-parameterised so that it computes exactly ``y + b'`` in eval mode *and* about the same in train
mode: running mean/variance are set to the statistics of y on real rows and the affine part undoes
them (gamma = sqrt(var + eps), beta = b' + mean). Otherwise the first training step would normalise
by batch statistics the folded weights never had and throw away what the model knew.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .model import ResNet50


def onnx_metadata(path: Path) -> dict[str, str]:
    import onnx

    return _metadata(onnx.load(str(path), load_external_data=False))


def _metadata(model) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _conv_bn_pairs(net: ResNet50, height: int, width: int) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Each conv with the BN that follows it, in the order the forward pass runs them (the ONNX
    graph's node order)."""
    modules = dict(net.named_modules())
    order: list[str] = []
    names = {m: n for n, m in modules.items()}
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(names[mod]))
             for m in modules.values() if isinstance(m, nn.Conv2d)]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, height, width))
    for h in hooks:
        h.remove()
    pairs = []
    for name in order:
        parent, _, leaf = name.rpartition(".")
        bn_name = f"{parent}.{'1' if leaf == '0' else leaf.replace('conv', 'bn')}"
        pairs.append((modules[name], modules[bn_name]))
    return pairs


def net_from_onnx(path: Path, rows: np.ndarray | None = None) -> tuple[ResNet50, dict[str, str]]:
    """The ResNet50 of a released model and its metadata. ``rows``: a batch of model inputs
    (N x 1 x H x W, normalised) whose statistics set the BatchNorms for training; without them
    the BNs are identities that only match the released model in eval mode."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    meta = _metadata(model)
    labels = json.loads(meta["labels"])
    height, width = int(meta["input_height"]), int(meta["input_width"])
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    net = ResNet50(len(labels))
    pairs = _conv_bn_pairs(net, height, width)
    if len(convs) != len(pairs):
        raise ValueError(f"{path}: {len(convs)} convolutions, a ResNet50 has {len(pairs)}")
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs):
            w = init[node.input[1]]
            if tuple(w.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: conv {node.name} is {w.shape}, expected {tuple(conv.weight.shape)}")
            b = init[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            conv.weight.copy_(torch.from_numpy(w.copy()))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # (y - 0) / sqrt(var + eps) == y
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b.copy()))
        net.fc.weight.copy_(torch.from_numpy(init["net.fc.weight"].copy()))
        # The classifier bias is folded into the constant the class maps are shifted by (1 x K x 1 x 1).
        cam_add = next(n for n in model.graph.node if n.op_type == "Add" and "cam" in n.output)
        bias = next(init[i] for i in cam_add.input if i in init)
        net.fc.bias.copy_(torch.from_numpy(bias.reshape(-1).copy()))
    if rows is not None:
        _fit_batchnorms(net, pairs, torch.as_tensor(rows))
    net.eval()
    return net, meta


def _fit_batchnorms(net: ResNet50, pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]], x: torch.Tensor) -> None:
    """Re-parameterise each BN with the statistics of its input on ``x``; eval output unchanged."""
    stats: dict[nn.BatchNorm2d, tuple[torch.Tensor, torch.Tensor]] = {}

    def grab(bn: nn.BatchNorm2d):
        def hook(_m, inputs, _o):
            y = inputs[0].double()
            stats[bn] = (y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3)))
        return hook

    hooks = [bn.register_forward_hook(grab(bn)) for _, bn in pairs]
    net.eval()
    with torch.no_grad():
        net(x)
        for h in hooks:
            h.remove()
        for _, bn in pairs:
            mean, var = stats[bn]
            var = var.clamp_min(1e-6)
            bn.bias.add_(mean.float())  # beta = b' + mean
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.running_mean.copy_(mean.float())
            bn.running_var.copy_(var.float())
