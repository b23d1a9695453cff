"""A plain convolutional extractor F_m: four conv-BN-ReLU-pool blocks (VGG style), then global pooling.

The paper fixes F_m to ResNet-18 so that N0/N1/N2 differ only in their fusion (section 5.2). On a
CPU with no speaker-identification pretraining, a ResNet-18 cut to width 16 on average-pooled
64 x 64 linear spectrograms under-fits RAVDESS audio (docs/RESULTS.md). A small log-mel CNN of this
shape is the field's usual from-scratch baseline for speech emotion: one 3x3 conv per block keeps
the cost to ~90 M multiply-adds per 64 x 100 segment at width 32 (a quarter of a width-32
ResNet-18's), and 2x2 pooling after each block gives a receptive field that spans a few hundred
milliseconds and a few mel octaves. It is an extractor like ResNet18: one element [N, C, H, W]
(a segment or a face) -> one vector [N, out_dim]; the aggregator A_m still handles time.

The input passes through a BatchNorm first (`bn0`), so log-mel values need no fixed scaling.
Global pooling is mean over frequency, then mean + max over time: the max keeps short salient
events (a laugh, a raised syllable) that a mean would dilute.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ConvNet"]


class ConvNet(nn.Module):
    """Blocks of [Conv3x3 -> BN -> ReLU -> (Dropout2d) -> MaxPool2] with widths w, 2w, 4w, 8w; out_dim = 8w.

    Args:
        in_channels: 1 for spectrograms or grey faces, 3 for RGB faces.
        width: channels of the first block (32 gives 32-64-128-256).
        blocks: number of blocks (each halves height and width).
        dropout: Dropout2d rate after each block's activation (0 = none).
    """

    def __init__(self, in_channels: int = 1, width: int = 32, blocks: int = 4, dropout: float = 0.0):
        super().__init__()
        self.in_channels, self.width = in_channels, width
        self.bn0 = nn.BatchNorm2d(in_channels)
        layers: list[nn.Module] = []
        cin = in_channels
        for i in range(blocks):
            cout = width * 2 ** i
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if dropout:
                layers.append(nn.Dropout2d(dropout))
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.out_dim = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self.bn0(x))         # [N, C, H', W']
        h = h.mean(dim=2)                      # over frequency (rows)
        return h.mean(dim=2) + h.amax(dim=2)   # over time: mean + max
