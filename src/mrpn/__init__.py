"""mrpn: Multi-modal Residual Perceptron Network for audio-video emotion recognition.

Implements Chang & Skarbek, "Multi-Modal Residual Perceptron Network for Audio-Video Emotion
Recognition", Sensors 21(16):5452, 2021. Data flows data -> features -> models -> training ->
evaluation -> inference, one sub-package per stage.
"""

__version__ = "0.1.0"
