"""`mrpn live SOURCE`: the rolling emotion label of a camera, a stream URL or a file played in real time.

A reader thread decodes the source with PyAV (a camera through v4l2, any URL PyAV opens: rtsp, http,
udp, ...; a file as fast as possible, or paced to its timestamps with `--realtime`), keeps video frames
at `--fps` (the model sees `video_fps` frames a second anyway; fewer frames = less face tracking),
resamples audio to 16 kHz mono and queues both. The main thread feeds `StreamPredictor`, which
predicts one window (the paper's 1 s, hop 0.2 s) per hop, and prints each with its latency: the wall
time from the moment the window's last sample was available to the moment its label is out.

Keeping up: when the input waiting in the queue is older than `--max-lag` seconds, that backlog is
dropped and the predictor restarts at the newest input (a restart costs one window of warm-up), so the
lag stays bounded instead of growing; dropped hops are counted and reported. Ctrl-C ends cleanly
with a summary (hops, dropped hops, latency, real-time factor).
"""
from __future__ import annotations

import argparse
import json
import math
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from mrpn import registry

SR = 16000
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


@dataclass
class LiveStats:
    hops: int = 0                 # windows predicted
    no_input: int = 0             # of which without a usable modality
    dropped_hops: int = 0
    drops: int = 0                # backlog drops (restarts)
    dropped_s: float = 0.0        # media seconds dropped
    media_s: float = 0.0
    busy_s: float = 0.0           # time spent tracking faces and predicting
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self, paced: bool) -> dict:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        expected = self.hops + self.dropped_hops
        out = {"hops": self.hops, "hops_without_input": self.no_input, "dropped_hops": self.dropped_hops,
               "dropped_fraction": round(self.dropped_hops / max(expected, 1), 4), "drops": self.drops,
               "dropped_media_s": round(self.dropped_s, 3), "media_s": round(self.media_s, 3),
               "wall_s": round(self.wall_s, 3), "busy_s": round(self.busy_s, 3),
               "real_time_factor": round(self.busy_s / max(self.media_s, 1e-6), 4), "notes": self.notes}
        if paced:
            out.update({"latency_median_s": round(float(np.median(lat)), 3),
                        "latency_p95_s": round(float(np.percentile(lat, 95)), 3),
                        "latency_max_s": round(float(lat.max()), 3)})
        return out


def open_source(source: str):
    """PyAV container for a camera index / device, a URL or a file; MediaError with the reason."""
    import av

    from mrpn.data.media import MediaError, _check_file

    try:
        if source.isdigit() or source.startswith("/dev/video"):
            dev = f"/dev/video{source}" if source.isdigit() else source
            return av.open(dev, format="v4l2", timeout=10)
        if _URL.match(source):
            opts = {"rtsp_transport": "tcp"} if source.lower().startswith("rtsp") else {}
            return av.open(source, options=opts, timeout=10)
        return av.open(str(_check_file(source)))
    except av.error.FFmpegError as e:
        raise MediaError(f"{source}: cannot open ({getattr(e, 'strerror', None) or e})") from None


class Reader(threading.Thread):
    """Decodes the source into `q` as ("frame", t, YUVFrame) / ("samples", t, float32 16 kHz) /
    ("end", t, error)."""

    def __init__(self, container, fps: float, paced: bool):
        super().__init__(daemon=True, name="mrpn-live-reader")
        from mrpn.data.media import _stream_fps

        self.c = container
        self.vs = container.streams.video[0] if container.streams.video else None
        self.as_ = container.streams.audio[0] if container.streams.audio else None
        if self.vs is None and self.as_ is None:
            raise ValueError("the source has neither a video nor an audio stream")
        src_fps = _stream_fps(self.vs) if self.vs is not None else 0.0
        self.fps = min(fps, src_fps) if src_fps > 0 else fps
        self.paced = paced
        self.q: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.t0_wall: float | None = None     # wall time of media time 0
        if self.vs is not None:
            self.vs.thread_type = "AUTO"

    def run(self) -> None:
        import av

        from mrpn.data.media import YUVFrame

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SR)
        first, next_v, t = None, 0.0, 0.0
        err = None
        try:
            for packet in self.c.demux([s for s in (self.vs, self.as_) if s is not None]):
                if self.stop.is_set():
                    break
                for frame in packet.decode():
                    if frame.time is None:
                        continue
                    if first is None:
                        first, self.t0_wall = frame.time, time.perf_counter()
                    t = frame.time - first
                    if self.paced and (wait := self.t0_wall + t - time.perf_counter()) > 0:
                        time.sleep(wait)
                    if packet.stream is self.vs:
                        if t + 1e-4 >= next_v:  # keep frames at self.fps
                            next_v = max(next_v + 1.0 / self.fps, t)
                            self.q.put(("frame", t, YUVFrame(frame)))
                    else:
                        for f in resampler.resample(frame):
                            self.q.put(("samples", t, f.to_ndarray().reshape(-1).astype(np.float32)))
            if self.as_ is not None and not self.stop.is_set():  # the samples the resampler still holds
                for f in resampler.resample(None):
                    self.q.put(("samples", t, f.to_ndarray().reshape(-1).astype(np.float32)))
        except av.error.FFmpegError as e:  # a stream that breaks off: keep what was read
            err = f"the stream broke off at {t:.1f} s ({getattr(e, 'strerror', None) or e})"
        finally:
            self.q.put(("end", t, err))
            self.c.close()


class Live:
    """Feeds a StreamPredictor from a Reader, drops backlog beyond `max_lag`, reports every hop."""

    def __init__(self, predictor, reader: Reader, max_lag: float, emit):
        self.p, self.r, self.max_lag, self.emit = predictor, reader, max_lag, emit
        self.stats = LiveStats()
        self.interrupted = threading.Event()
        self.has_v, self.has_a = reader.vs is not None, reader.as_ is not None
        if not self.has_a:
            self.stats.notes.append("no audio stream: silence is fed, the face head predicts")
        if not self.has_v:
            self.stats.notes.append("no video stream: blank frames are fed, the voice head predicts")
        self.end = 0.0
        self._restart(0.0)

    def _restart(self, offset: float) -> None:
        from mrpn.inference.predictor import StreamPredictor

        self.sp = StreamPredictor(self.p, fps=self.r.fps)
        self.offset, self.n_frames, self.n_audio = offset, 0, 0

    def _fill(self, t: float) -> tuple[list, np.ndarray | None]:
        """Silence / blank frames up to media time t for a missing stream (the other head predicts)."""
        rel = t - self.offset
        frames, audio = [], None
        if not self.has_a:
            n = int(rel * SR) - self.n_audio
            audio = np.zeros(max(n, 0), np.float32)
        if not self.has_v:
            while self.n_frames < rel * self.r.fps:
                frames.append(np.zeros((64, 64, 3), np.uint8))
                self.n_frames += 1
        return frames, audio

    def _push(self, frames, audio) -> None:
        if audio is not None:
            self.n_audio += len(audio)
        t0 = time.perf_counter()
        wins = self.sp.push(frames, audio)
        self.stats.busy_s += time.perf_counter() - t0
        self._out(wins)

    def _out(self, wins) -> None:
        now = time.perf_counter()
        for w in wins:
            w = dict(w, start=round(w["start"] + self.offset, 3), end=round(w["end"] + self.offset, 3))
            if self.r.paced and self.r.t0_wall is not None:
                w["latency_s"] = round(now - (self.r.t0_wall + w["end"]), 3)
                self.stats.latencies.append(w["latency_s"])
            self.stats.hops += 1
            self.stats.no_input += w["label"] is None
            self.emit(w)

    def _seen(self, kind: str, t: float, data) -> None:
        """Media time covered so far (dropped input included): the end of the last frame or sample."""
        if kind == "frame":
            self.end = max(self.end, t + 1.0 / self.r.fps)
        elif kind == "samples":
            self.end = max(self.end, t + len(data) / SR)

    def _drop_backlog(self, t: float) -> float:
        """Discard queued input older than one hop behind real time; returns the media time to restart at."""
        last = t
        while True:
            try:
                kind, t2, data = self.r.q.get_nowait()
            except queue.Empty:
                break
            # video frames and audio chunks are queued interleaved, each with its own start time, so
            # a later item may start earlier than the one before: the restart point only moves forward
            last = max(last, t2)
            self._seen(kind, t2, data)
            if kind == "end":
                self.r.q.put((kind, t2, data))
                break
            if time.perf_counter() - (self.r.t0_wall + t2) < self.p.hop_s:
                break
        return last

    def run(self, duration: float | None = None) -> LiveStats:
        w0 = time.perf_counter()
        t = 0.0
        try:
            while True:
                if self.interrupted.is_set():
                    raise KeyboardInterrupt
                try:
                    kind, t, data = self.r.q.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._seen(kind, t, data)
                if kind == "end":
                    if data:
                        self.stats.notes.append(data)
                    break
                if duration is not None and t >= duration:
                    break
                lag = time.perf_counter() - (self.r.t0_wall + t)
                if self.r.paced and lag > self.max_lag:
                    restart = self._drop_backlog(t)
                    self.stats.drops += 1
                    self.stats.dropped_s += restart - t
                    print(f"live: {lag:.2f} s behind: dropped {restart - t:.2f} s of input", file=sys.stderr)
                    self._restart(restart)
                    continue
                frames, audio = self._fill(t)
                if kind == "frame":
                    frames.append(data)
                    self.n_frames += 1
                else:
                    audio = data if audio is None else np.concatenate([audio, data])

                self._push(frames, audio)
        except KeyboardInterrupt:
            self.stats.notes.append("interrupted (Ctrl-C)")
        finally:
            self.r.stop.set()
        t1 = time.perf_counter()
        self._out(self.sp.finish())
        self.stats.busy_s += time.perf_counter() - t1
        end = self.stats.media_s = self.end
        # every hop of the input that did not come out was dropped (backlog and restart warm-ups)
        n = int(math.floor((end - self.p.window_s) / self.p.hop_s + 1e-6)) + 1 if end >= self.p.window_s else 0
        self.stats.dropped_hops = max(0, n - self.stats.hops)
        self.stats.wall_s = time.perf_counter() - w0
        return self.stats


def warm_up(pred) -> None:
    """One window on synthetic input before the clock starts: the first call pays for lazy
    initialisation (kernels, the detector's cascade), which would otherwise count as lag."""
    from mrpn.inference.predictor import StreamPredictor

    sp = StreamPredictor(pred, fps=10)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(12)]
    sp.push(frames, rng.standard_normal(int(1.2 * SR)).astype(np.float32))
    sp.finish()


def format_window(w: dict) -> str:
    if w["label"] is None:
        text = f"{'(no input)':<10}      "
    else:
        text = f"{w['label']:<10} {w['probabilities'][w['label']]:.2f}"
    mods = "+".join(registry.modality(m).title for m in w.get("modalities", [])) or "-"
    lat = f"  latency {w['latency_s']:.2f} s" if "latency_s" in w else ""
    return f"{w['start']:8.2f}-{w['end']:<8.2f} {text}  {mods:<10}{lat}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="camera index (0) or device (/dev/video0), a URL PyAV opens (rtsp://, http://), "
                                  "or a file")
    p.add_argument("--realtime", action="store_true", help="play a file at its real speed (URLs and cameras "
                                                          "always are)")
    p.add_argument("--model", help="checkpoint or .safetensors model; default: the shipped model")
    p.add_argument("--fps", type=float, default=15.0, help="video frames kept per second (default 15)")
    p.add_argument("--max-lag", type=float, default=1.0, help="drop input older than this many seconds")
    p.add_argument("--duration", type=float, help="stop after this many seconds of input")
    p.add_argument("--jsonl", help="write one JSON line per hop here ('-' = stdout instead of the table)")
    p.add_argument("--summary", help="write the summary JSON here")
    p.add_argument("--detector", default="opencv", help="face detector: opencv, dlib-hog, dlib-cnn, none")
    p.add_argument("--hop", type=float, default=0.2, help="hop between windows in seconds (paper: 0.2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the reader thread decodes "
                                                         "on the other core)")


def main(args: argparse.Namespace) -> int:
    from mrpn.config import ConfigError
    from mrpn.data.media import MediaError
    from mrpn.inference.predictor import Predictor
    from mrpn.io import atomic_write_json
    from mrpn.checkpoint import CheckpointError

    if args.fps <= 0 or args.max_lag <= 0 or args.hop <= 0:
        print("mrpn live: error: --fps, --max-lag and --hop must be > 0", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(max(1, args.threads))
    try:
        pred = Predictor(args.model, detector=args.detector, hop_s=args.hop)
        warm_up(pred)
        container = open_source(args.source)
        is_file = not (args.source.isdigit() or args.source.startswith("/dev/video") or _URL.match(args.source))
        reader = Reader(container, args.fps, paced=args.realtime or not is_file)
    except (CheckpointError, ConfigError, MediaError, ValueError, RuntimeError) as e:
        print(f"mrpn live: error: {e}", file=sys.stderr)
        return 2
    out = None
    if args.jsonl and args.jsonl != "-":
        out = open(args.jsonl, "at", buffering=1)  # appended line by line: a crash keeps what was written

    def emit(w: dict) -> None:
        if args.jsonl == "-":
            print(json.dumps(w), flush=True)
            return
        if out is not None:
            out.write(json.dumps(w) + "\n")
        print(format_window(w), flush=True)

    print(f"mrpn live: {args.source} at {reader.fps:g} fps, window {pred.window_s:g} s, hop {pred.hop_s:g} s"
          + (" (real time)" if reader.paced else " (as fast as possible)"), file=sys.stderr)
    live = Live(pred, reader, args.max_lag, emit)
    # Ctrl-C sets a flag that the loop checks between items (at least every 0.2 s), wherever the signal
    # lands (decoder, detector, model), so the summary always comes out
    import signal

    try:
        previous = signal.signal(signal.SIGINT, lambda *_: live.interrupted.set())
    except ValueError:  # not the main thread: Ctrl-C cannot reach us anyway
        previous = None
    reader.start()
    try:
        stats = live.run(args.duration)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if out is not None:
        out.close()
    s = stats.summary(reader.paced)
    lat = (f", latency median {s['latency_median_s']:.2f} s, p95 {s['latency_p95_s']:.2f} s"
           if reader.paced else "")
    print(f"mrpn live: {s['hops']} hops over {s['media_s']:.1f} s of input, dropped {s['dropped_hops']} "
          f"({100 * s['dropped_fraction']:.1f} %){lat}, real-time factor {s['real_time_factor']:.2f}", file=sys.stderr)
    if s["dropped_fraction"] > 0.10:
        print("mrpn live: could not keep up (more than 10 % of hops dropped): lower --fps or raise --hop",
              file=sys.stderr)
    for n in s["notes"]:
        print(f"mrpn live: note: {n}", file=sys.stderr)
    if args.summary:
        atomic_write_json(args.summary, dict(s, source=args.source, fps=reader.fps, max_lag_s=args.max_lag))
    return 0
