"""mrpn: Multi-modal Residual Perceptron Network for audio-video emotion recognition.

Implements Chang & Skarbek, "Multi-Modal Residual Perceptron Network for Audio-Video Emotion
Recognition", Sensors 21(16):5452, 2021. Data flows data -> features -> models -> training ->
evaluation -> inference, one sub-package per stage.

One call: `mrpn.predict("clip.mp4")` (see `mrpn.api`). Attributes are imported on first use,
so `import mrpn` stays fast (torch loads only when a model is needed).
"""

__version__ = "0.1.0"
__all__ = ["predict", "load_model", "Result", "__version__"]


def __getattr__(name: str):
    if name in ("predict", "load_model", "Result"):
        from mrpn import api

        return getattr(api, name)
    raise AttributeError(f"module 'mrpn' has no attribute {name!r}")
