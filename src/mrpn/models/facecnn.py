"""FaceCNN: a small VGG-style face extractor F_v, an alternative to ResNet-18 for 48x48 grey faces.

The paper's F_v is ResNet-18 pretrained on FER2013 (section 5.2). On a 2-core CPU a ResNet-18 that
keeps enough resolution for 48x48 faces trains too slowly to be pretrained well, while plain 3x3
conv stages (VGG, Simonyan & Zisserman 2015) run several times faster per FLOP there and are the
usual strong FER2013 baseline. It is offered as `model.video_extractor=facecnn` (docs/CONFIG.md
lists it as a difference from the paper); like ResNet18 it maps one frame [N, C, H, W] to a
feature vector [N, out_dim] with no classifier, so the aggregator A_v and every fusion network
(N0-N2, eqs. 7-9) use it unchanged.

Layout: stage k = `depth[k]` x (3x3 conv, BatchNorm, ReLU) then 2x2 max-pool; after the last stage
the map is average-pooled to 3x3 (the identity for 48x48 input) and flattened, so the dense layer
keeps where on the face a feature is (mouth vs eyes), which global pooling would discard.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FaceCNN"]


class FaceCNN(nn.Module):
    """VGG-style extractor: frames [N, C, H, W] -> features [N, out_dim].

    Args:
        in_channels: 1 for grey faces (FER2013), 3 for RGB.
        width: channels of the first stage; stage k has width * 2**k channels.
        depth: convs per stage (four stages: 48 -> 24 -> 12 -> 6 -> 3 pixels for a 48x48 face).
        out_dim: size of the feature vector (a dense layer on the 3x3 map).
        dropout: dropout before the dense layer (train mode only).
    """

    def __init__(self, in_channels: int = 1, width: int = 24, depth: tuple[int, ...] = (1, 2, 2, 2),
                 out_dim: int = 256, dropout: float = 0.3):
        super().__init__()
        self.in_channels, self.width, self.depth = in_channels, width, tuple(depth)
        layers: list[nn.Module] = []
        c = in_channels
        for k, n in enumerate(self.depth):
            o = width * 2 ** k
            for _ in range(n):
                layers += [nn.Conv2d(c, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]
                c = o
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.drop = nn.Dropout(dropout)
        # BatchNorm1d after the dense layer: the features reach A_v and FeatureNorm (eq. 5) on a steady scale
        self.fc = nn.Sequential(nn.Linear(c * 9, out_dim, bias=False), nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True))
        self.out_dim = out_dim
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self._pool3(self.features(x)), 1)
        lin, bn, relu = self.fc
        h = lin(self.drop(x))
        if self.training and h.shape[0] == 1:
            # a batch of one frame (a short clip in a video batch) has no batch statistics: use the running ones
            h = F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        else:
            h = bn(h)
        return relu(h)

    def _pool3(self, x: torch.Tensor) -> torch.Tensor:
        """The 3x3 average pool, written so that ONNX export works: the exporter cannot size an adaptive
        pool whose input it sees with dynamic dims (frames come folded as [B*T, ...]), so the map's
        static size picks fixed windows. Same values as `self.pool` (nn.AdaptiveAvgPool2d(3))."""
        if not torch.onnx.is_in_onnx_export():  # eager: exactly the module's pool
            return self.pool(x)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if (h, w) == (3, 3):                 # a 48 x 48 face: the pool is the identity
            return x
        if h % 3 == 0 and w % 3 == 0:        # equal windows: a plain average pool
            return F.avg_pool2d(x, (h // 3, w // 3))
        # unequal windows, as the adaptive pool lays them out: [floor(i h / 3), ceil((i + 1) h / 3))
        rows = [(i * h // 3, -(-(i + 1) * h // 3)) for i in range(3)]
        cols = [(j * w // 3, -(-(j + 1) * w // 3)) for j in range(3)]
        cells = [x[..., r0:r1, c0:c1].mean(dim=(-2, -1)) for r0, r1 in rows for c0, c1 in cols]
        return torch.stack(cells, -1).unflatten(-1, (3, 3))
