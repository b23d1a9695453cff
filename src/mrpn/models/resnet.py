"""ResNet-18 feature extractor F_m (paper eq. 1, section 5.2), written from scratch.

The paper fixes the CNN extractor of both modalities to ResNet-18 [He et al. 2016] so that N0, N1
and N2 differ only in their fusion strategy (section 5.2). Here it is a pure feature extractor: it
maps one frame (a face crop or a one-second spectrogram) to a vector of size `width * 8` after global
average pooling, with no classifier. The sequence over time is handled by the aggregator A_m.

Module names follow torchvision (conv1, bn1, layer1..layer4, downsample) so a torchvision-style
state_dict (minus `fc.*`) loads as is, which keeps the door open for ImageNet/FER/VoxCeleb
initialisation without depending on torchvision.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNet18"]


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    # no bias: every conv is followed by BatchNorm, whose shift makes a conv bias redundant
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut: y = ReLU(x + BN(conv(ReLU(BN(conv(x))))))."""

    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            # the shortcut must match the residual's shape before the sum
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]) without classifier: frames [N, C, H, W] -> features [N, width*8].

    This is F_m of eq. (1), applied to each element of the temporal sequence x_m.

    Args:
        in_channels: 3 for RGB faces, 1 for grey faces or spectrograms.
        width: channels of the first stage; stages use width * (1, 2, 4, 8). 64 is the paper's ResNet-18.
        stem: "imagenet" = 7x7 stride-2 conv + 3x3 stride-2 max-pool (total stride 4, the original
            ResNet); "small" = a single 3x3 stride-1 conv and no max-pool, so small inputs (48x48 FER
            faces, small spectrograms) are not reduced to 1x1 before the last stage.
        zero_init_residual: start every block's last BN gamma at 0 so each block begins as identity
            (Goyal et al. 2017); helps from-scratch training, harmless when loading pretrained weights.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, stem: str = "imagenet",
                 zero_init_residual: bool = False):
        super().__init__()
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        self.in_channels, self.width, self.stem = in_channels, width, stem
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = conv3x3(in_channels, width)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        widths = [width, width * 2, width * 4, width * 8]
        self.layer1 = self._stage(width, widths[0], stride=1)
        self.layer2 = self._stage(widths[0], widths[1], stride=2)
        self.layer3 = self._stage(widths[1], widths[2], stride=2)
        self.layer4 = self._stage(widths[2], widths[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = widths[3]
        self._init_weights(zero_init_residual)

    @staticmethod
    def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # fan_out keeps the backward signal's variance stable through ReLU convs (He et al. 2015)
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before pooling: [N, width*8, H', W']."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten (not view) so a channels_last [N, C, 1, 1] map becomes [N, C] without a copy error
        return torch.flatten(self.avgpool(self.forward_features(x)), 1)
