"""The GE2E speaker encoder (Wan et al. 2018) as an audio extractor F_a, with resemblyzer's weights.

The paper starts F_a from speaker identification on VoxCeleb (section 5.2). Nothing may be
downloaded at run time, but resemblyzer's PyPI wheel (Apache-2.0, optional extra `speaker`)
carries `pretrained.pt`: a GE2E encoder trained on VoxCeleb 1+2 and LibriSpeech. Its network is
LSTM(40, 256, 3 layers) on 40 power mel bands, the last layer's final hidden state ->
Linear(256, 256) -> ReLU -> L2 norm. The file is a pickle; it is read here only with
`torch.load(weights_only=True)`, which restores tensors and plain containers and runs no code;
resemblyzer itself is never imported (its audio module pulls webrtcvad and librosa).

As an extractor it maps one 1 s segment of the "ge2e" front end (`features/spectrogram.py`:
[N, 1, 40, 100]) to a 256-d unit vector; the aggregator A_m (the SAC of the paper) handles time.
With `train.pretrained_a=resemblyzer` it starts from the wheel's weights; with
`train.freeze_extractors=a` it stays fixed (a probe), otherwise it is fine-tuned.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

__all__ = ["GE2E", "GE2EExtractor", "weights_path", "resemblyzer_state_dict", "load_encoder", "RESEMBLYZER"]

RESEMBLYZER = "resemblyzer"   # the value of train.pretrained_a that names the wheel's weights


def weights_path() -> Path | None:
    """resemblyzer's pretrained.pt, found without importing the package; None when it is not installed."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    return p if p.is_file() else None


class GE2E(nn.Module):
    """LSTM(40, 256, 3) -> last layer's final hidden state -> Linear(256, 256) -> ReLU -> L2 norm."""

    def __init__(self, n_mels: int = 40, hidden: int = 256, embed: int = 256, layers: int = 3):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embed)
        self.relu = nn.ReLU()
        self.out_dim = embed

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        """mels [B, T, 40] -> unit embeddings [B, 256] (non-negative after the ReLU)."""
        _, (hidden, _) = self.lstm(mels)
        e = self.relu(self.linear(hidden[-1]))
        return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)


class GE2EExtractor(GE2E):
    """F_a over "ge2e" front-end segments: [N, 1, 40, T] -> [N, 256]. The state dict's names are the
    GE2E's (lstm.*, linear.*), so resemblyzer's weights load as they are."""

    def __init__(self, in_channels: int = 1):
        if in_channels != 1:
            raise ValueError(f"the ge2e extractor takes one mel channel (audio_in_channels={in_channels})")
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[2] != 40:
            raise ValueError(f"ge2e extractor: expected [N, 1, 40, T] mel segments (data.audio_frontend=ge2e), "
                             f"got {tuple(x.shape)}")
        return super().forward(x[:, 0].transpose(1, 2).contiguous())


def resemblyzer_state_dict(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The encoder's tensors from resemblyzer's pretrained.pt (tensors only, never a full unpickle)."""
    path = Path(path) if path else weights_path()
    if path is None or not path.is_file():
        raise FileNotFoundError("resemblyzer's pretrained.pt not found: pip install 'mrpn[speaker]' "
                                "(or pip install --no-deps 'resemblyzer>=0.1.4,<0.2')")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("model_state") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a resemblyzer checkpoint (no model_state)")
    return {k: v for k, v in state.items() if not k.startswith("similarity_")}


def load_encoder(path: str | Path | None = None) -> GE2E:
    """The pretrained encoder in eval mode; FileNotFoundError when resemblyzer is not installed."""
    model = GE2E()
    model.load_state_dict(resemblyzer_state_dict(path), strict=True)
    return model.eval()
