"""Rendering of one planned clip (face frames + voice) and writing it as an mp4 (H.264 + AAC)."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mrpn.io import atomic_path

from .face import NEUTRAL_EXPRESSION, blend, clamp_expression, emotion_expression
from .face_render import render_face
from .plan import ClipPlan
from .voice import plan_utterance
from .voice_render import synth_voice


# nuisance ranges (v2): recording level of the voice (dB RMS), light gain and gradient strength
RECORDING_LEVEL_DB = (-32.0, -18.0)
LIGHT_GAIN = (0.75, 1.15)
LIGHT_SLOPE = 0.25


def _smoothstep(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def face_timeline(plan: ClipPlan, rng: np.random.Generator) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Per-frame expressions: the actor's resting face, an onset to the apex of `face_emotion`
    and (usually) back, plus blinking (in the renderer) and talking (added by the caller)."""
    a = plan.actor
    rest = clamp_expression({k: NEUTRAL_EXPRESSION[k] + a.rest.get(k, 0.0) for k in NEUTRAL_EXPRESSION})
    intensity = float(rng.uniform(0.75, 1.0))
    apex = emotion_expression(plan.face_emotion, intensity * a.face_expressiveness, rng, variability=0.1)
    apex = clamp_expression({k: apex[k] + (rest[k] - NEUTRAL_EXPRESSION[k]) for k in apex})
    d = plan.duration
    t1 = float(rng.uniform(0.0, 0.25)) * d
    rise = float(rng.uniform(0.25, 0.6))
    t2 = float(rng.uniform(0.7, 1.05)) * d
    fall = float(rng.uniform(0.3, 0.7))
    t = np.arange(plan.n_frames) / plan.fps
    env = _smoothstep((t - t1) / rise) * (1.0 - _smoothstep((t - t2) / fall))
    frames = [blend(rest, apex, float(w)) for w in env]
    return frames, {"face_intensity": intensity, "onset": t1, "offset": t2, "apex_expression": apex}


def _render_voice(plan: ClipPlan) -> tuple[np.ndarray, Any, dict[str, Any]]:
    """The clip's speech, at a recording level drawn independently of the emotion: a loud (angry)
    or quiet (sad) voice shows in its spectrum (effort brightens it), not in the clip's mean energy,
    which would otherwise be a one-number shortcut to the label."""
    rng = np.random.default_rng(plan.seed)
    voice_intensity = float(rng.uniform(0.8, 1.0))
    vrng = np.random.default_rng([plan.seed, 1])
    utt = plan_utterance(plan.actor.voice, plan.voice_emotion, plan.duration, vrng, intensity=voice_intensity)
    audio = synth_voice(plan.actor.voice, plan.voice_emotion, plan.duration, plan.sr, vrng, utterance=utt)
    n = int(round(plan.duration * plan.sr))
    audio = audio[:n] if len(audio) >= n else np.pad(audio, (0, n - len(audio)))
    level_db = float(np.random.default_rng([plan.seed, 4]).uniform(*RECORDING_LEVEL_DB))
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) + 1e-12
    audio = np.clip(audio * (10 ** (level_db / 20) / rms), -1.0, 1.0).astype(np.float32)
    info = {"voice_intensity": round(voice_intensity, 4), "speech_start_s": round(utt.speech_start, 3),
            "speech_end_s": round(utt.speech_end, 3), "syllables": len(utt.syllables),
            "f0_base_hz": round(utt.f0_base, 2), "recording_level_db": round(level_db, 2)}
    return audio, utt, info


def _lighting(size: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """A per-clip light: overall gain times a linear gradient from a random direction."""
    gain = float(rng.uniform(*LIGHT_GAIN))
    ang = float(rng.uniform(0.0, 2.0 * np.pi))
    slope = float(rng.uniform(0.0, LIGHT_SLOPE))
    u = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    g = gain * (1.0 + slope * (np.cos(ang) * u[None, :] + np.sin(ang) * u[:, None]))
    return g[:, :, None], {"light_gain": round(gain, 3), "light_slope": round(slope, 3)}


def render_clip(plan: ClipPlan) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Frames uint8 [T, S, S, 3] RGB, audio float32 [N] at plan.sr, and facts about the clip."""
    a = plan.actor
    audio, utt, vinfo = _render_voice(plan)
    frng = np.random.default_rng([plan.seed, 2])
    expressions, finfo = face_timeline(plan, frng)
    # per-clip framing and lighting: where the actor sits, how close, where the light comes from
    sc = float(frng.uniform(0.93, 1.07))
    face = replace(a.face, cx=a.face.cx + float(frng.uniform(-0.03, 0.03)),
                   cy=a.face.cy + float(frng.uniform(-0.02, 0.02)), half_w=a.face.half_w * sc,
                   half_h=a.face.half_h * sc)
    light, linfo = _lighting(plan.size, frng)
    t = np.arange(plan.n_frames) / plan.fps
    talk = utt.mouth_open(t) * float(frng.uniform(0.3, 0.5))
    frames = np.empty((plan.n_frames, plan.size, plan.size, 3), np.uint8)
    nrng = np.random.default_rng([plan.seed, 3])
    for i, e in enumerate(expressions):
        e = dict(e)
        e["mouth_open"] = e["mouth_open"] + talk[i] * (1.0 - 0.6 * e["mouth_open"])
        img = render_face(face, e, float(t[i]), size=plan.size, rng=nrng, noise=2.0)
        frames[i] = np.clip(img.astype(np.float32) * light, 0, 255).astype(np.uint8)
    info = {"face_intensity": round(finfo["face_intensity"], 4), "face_onset_s": round(finfo["onset"], 3),
            "face_offset_s": round(finfo["offset"], 3), **linfo, **vinfo}
    return frames, audio, info


_VIDEO_CODEC: str | None = None


def video_codec() -> str:
    """H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 part 2."""
    global _VIDEO_CODEC
    if _VIDEO_CODEC is None:
        import av

        for name in ("libx264", "h264", "mpeg4"):
            try:
                av.codec.Codec(name, "w")
                _VIDEO_CODEC = name
                break
            except Exception:  # noqa: BLE001 - codec missing from this FFmpeg build
                continue
        else:
            raise RuntimeError("PyAV's FFmpeg has no H.264 or MPEG-4 encoder")
    return _VIDEO_CODEC


def write_mp4(path: str | os.PathLike, frames: np.ndarray, audio: np.ndarray | None, fps: int, sr: int) -> None:
    """Write RGB frames [T, H, W, 3] and mono float audio to an mp4 (H.264 + AAC), atomically."""
    import av

    def _write(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="mp4") as c:
            codec = video_codec()
            vs = c.add_stream(codec, rate=fps)
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            if codec in ("libx264", "h264"):
                # zerolatency: no lookahead thread, whose timing otherwise changed x264's decisions
                # (and the decoded pixels) from run to run even with threads=1
                vs.options = {"preset": "veryfast", "crf": "20", "threads": "1", "tune": "zerolatency"}
            else:
                vs.options = {"qscale": "3"}
            vs.codec_context.thread_count = 1
            ast = None
            if audio is not None:
                ast = c.add_stream("aac", rate=sr, layout="mono")
                ast.options = {"b": "64k"} if sr >= 32000 else {"b": "48k"}
            for i, fr in enumerate(frames):
                # converted to yuv420p here (OpenCV, BT.601 like FFmpeg's default) rather than by the
                # encoder's scaler, whose output varied between runs for the same input
                yuv = cv2.cvtColor(np.ascontiguousarray(fr), cv2.COLOR_RGB2YUV_I420)
                vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                vf.pts = i
                for p in vs.encode(vf):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
            if ast is not None:
                fs = ast.codec_context.frame_size or 1024
                x = np.asarray(audio, np.float32)
                for i in range(0, len(x), fs):
                    af = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, i:i + fs]), format="fltp",
                                                    layout="mono")
                    af.sample_rate = sr
                    af.pts = i
                    for p in ast.encode(af):
                        c.mux(p)
                for p in ast.encode():
                    c.mux(p)

    with atomic_path(path, suffix=".mp4") as tmp:
        _write(tmp)
