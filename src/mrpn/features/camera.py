"""Camera conditions on training faces (issue 9 item 3, "a shipped model that works on real video").

FER2013's faces are sharp, well exposed and of one size; faces cut from real video are blurred by focus
and motion, small when the person is far away, dark in dim rooms or burnt out by a window, and noisy.
These are drawn per image on a batch [B, C, H, W] in [0, 1] (the FER2013 pretraining's augmentation,
`training.fer.augment`), each with its own probability:

* optics: defocus (a Gaussian of sigma 0.5-2 px at 48 px, cut at the 9-px kernel, so the widest has an
  effective sigma of 1.85 px) or, half of the time, motion (a line of 3-9 px in a random direction);
* distance: the face shrunk to 12-32 px across (area average), then scaled back up (bilinear);
* exposure: a gain of 0.25-1.8, log-uniform (a dim room to overexposure), clipped to the range;
* sensor noise: Gaussian, sigma 1-10 % of the range.

All draws come from the CPU generator `g` and move to the batch's device, and nothing is drawn for a
condition whose probability is 0, so recipes without these keys train exactly as before.
`bench/face_robustness.py` measures the face head under fixed conditions of these kinds and of kinds never
drawn here (JPEG, a 20 degree tilt, a covered mouth, tight and off-centre boxes), as
`features/acoustics.py` and `bench/audio_robustness.py` do for the voice.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

K = 9   # kernel side: a 9-px line; a 2-px Gaussian to +-2 sigma (what the runs of 2026-12-08 trained with)


def blur_kernels(n: int, g: torch.Generator) -> torch.Tensor:
    """n normalised kernels [n, K, K]: half Gaussians (sigma 0.5-2 px), half lines of 3-9 px at a random angle."""
    u = torch.rand(n, 4, generator=g)
    r = torch.arange(K, dtype=torch.float32) - K // 2
    yy, xx = r[:, None].expand(K, K), r[None, :].expand(K, K)
    sigma = (0.5 + 1.5 * u[:, 2])[:, None, None]
    gauss = torch.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    ang = (math.pi * u[:, 3])[:, None, None]
    along, across = xx * torch.cos(ang) + yy * torch.sin(ang), -xx * torch.sin(ang) + yy * torch.cos(ang)
    length = (3 + 6 * u[:, 1])[:, None, None]
    # an anti-aliased line: full weight within length/2 along it and half a pixel across it
    line = (length / 2 + 0.5 - along.abs()).clamp(0, 1) * (1 - across.abs()).clamp(0, 1)
    k = torch.where((u[:, 0] < 0.5)[:, None, None], line, gauss)
    return k / k.sum(dim=(1, 2), keepdim=True)


def _blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Each image of x [n, C, H, W] convolved with its kernel k [n, K, K] (edges repeated)."""
    n, c, h, w = x.shape
    weight = k.to(x.device, x.dtype).repeat_interleave(c, 0)[:, None]          # [n*C, 1, K, K]
    xp = F.pad(x.reshape(1, n * c, h, w), (K // 2,) * 4, mode="replicate")
    return F.conv2d(xp, weight, groups=n * c).reshape(n, c, h, w)


def _pick(b: int, p: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(the images chosen with probability p, a uniform draw in [0, 1) for each image)."""
    u = torch.rand(b, 2, generator=g)
    return (u[:, 0] < p).nonzero().flatten(), u[:, 1]


def augment(x: torch.Tensor, g: torch.Generator, blur: float = 0.0, lowres: float = 0.0,
            exposure: float = 0.0, noise: float = 0.0) -> torch.Tensor:
    """x [B, C, H, W] in [0, 1] under camera conditions; each argument is the probability of its condition."""
    b, _, h, w = x.shape
    if blur > 0:
        idx, _ = _pick(b, blur, g)
        k = blur_kernels(b, g)[idx]
        if len(idx):
            x = x.clone()
            x[idx.to(x.device)] = _blur(x[idx.to(x.device)], k)
    if lowres > 0:
        idx, u = _pick(b, lowres, g)
        if len(idx):
            x = x.clone()
        for i in idx.tolist():
            s = int(round(12 + 20 * float(u[i])))
            small = F.interpolate(x[i:i + 1], size=(s, max(1, s * w // h)), mode="area")
            x[i:i + 1] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    if exposure > 0:
        idx, u = _pick(b, exposure, g)
        gain = torch.ones(b)
        gain[idx] = torch.exp(math.log(0.25) + (math.log(1.8) - math.log(0.25)) * u[idx])
        x = (x * gain.to(x.device, x.dtype)[:, None, None, None]).clamp(0, 1)
    if noise > 0:
        idx, u = _pick(b, noise, g)
        sigma = torch.zeros(b)
        sigma[idx] = 0.01 + 0.09 * u[idx]
        x = (x + sigma.to(x.device, x.dtype)[:, None, None, None] * torch.randn(x.shape, generator=g).to(x.device)
             ).clamp(0, 1)
    return x
