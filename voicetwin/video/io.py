"""Video I/O with PyAV: probe, stream frames in bounded memory, write H.264 + AAC.

Frames are ``uint8`` RGB arrays of shape ``(height, width, 3)``. Frame rates are in frames per second
(``fractions.Fraction`` where exactness matters), times in seconds. Audio arrays follow ``voicetwin.audio.io``:
float32 ``(samples,)`` in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, InputNotFoundError
from ..files import atomic_path


class VideoDecodeError(InputError):
    """A file is not a decodable video (corrupt, audio only, unknown format)."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds. ``frames`` is the container's count, or an estimate from the duration."""

    path: str
    width: int
    height: int
    frame_rate: Fraction
    frames: int
    duration: float
    has_audio: bool
    codec: str

    @property
    def fps(self) -> float:
        return float(self.frame_rate)


def _open(path: str | Path):
    import av

    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no such file", path=path, fix="check the path")
    if path.is_dir():
        raise InputError("is a folder, not a video file", path=path)
    try:
        return av.open(str(path))
    except Exception as exc:
        raise VideoDecodeError(f"cannot open as video ({type(exc).__name__}: {exc})", path=path,
                               fix="check that the file is a complete video (mp4, mkv, avi, mov)") from exc


def probe(path: str | Path) -> VideoInfo:
    """Read a video's size, frame rate, frame count and duration without decoding it.

    Raises:
        InputNotFoundError, VideoDecodeError (unreadable or no video stream).
    """
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError("has no video stream", path=path, fix="give a video file, not audio only")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frames = int(stream.frames) if stream.frames else int(round(duration * float(rate)))
        if not ctx.width or not ctx.height:
            raise VideoDecodeError("video stream has no picture size", path=path)
        return VideoInfo(str(path), int(ctx.width), int(ctx.height), Fraction(rate), frames,
                         duration or frames / float(rate), bool(container.streams.audio), ctx.name)


def iter_frames(path: str | Path, scale: float = 1.0) -> Iterator[np.ndarray]:
    """Decode frames one by one (bounded memory), as RGB ``(height, width, 3)`` uint8.

    ``scale < 1`` shrinks frames in the decoder (faster analysis); ``scale == 1`` gives the exact decoded pixels.
    Raises ``VideoDecodeError`` when decoding fails part-way.
    """
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError("has no video stream", path=path, fix="give a video file, not audio only")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width = height = None
        try:
            for frame in container.decode(stream):
                if scale != 1.0:
                    if width is None:
                        width = max(2, int(round(frame.width * scale / 2)) * 2)
                        height = max(2, int(round(frame.height * scale / 2)) * 2)
                    yield frame.to_ndarray(format="rgb24", width=width, height=height)
                else:
                    yield frame.to_ndarray(format="rgb24")
        except VideoDecodeError:
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("av"):
                raise VideoDecodeError(f"decoding failed ({exc})", path=path, fix="re-export the video") from exc
            raise



def iter_keyframes(path: str | Path, limit: int = 40) -> Iterator[np.ndarray]:
    """Decode only key frames (fast), at most ``limit``, as RGB arrays; the first frame always comes first."""
    with _open(path) as container:
        if not container.streams.video:
            raise VideoDecodeError("has no video stream", path=path, fix="give a video file, not audio only")
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i >= limit:
                    break
                yield frame.to_ndarray(format="rgb24")
        except Exception as exc:
            if type(exc).__module__.startswith("av"):
                raise VideoDecodeError(f"decoding failed ({exc})", path=path, fix="re-export the video") from exc
            raise


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    frame_rate: Fraction | float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 17,
    preset: str = "veryfast",
) -> Path:
    """Encode frames as H.264 (yuv420p) and ``audio`` as AAC into an mp4/mkv/mov, atomically.

    Args:
        frames: iterable of RGB ``(height, width, 3)`` uint8 arrays, all the same size (consumed lazily).
        frame_rate: frames per second of the output (keep the input's).
        audio: float32 ``(samples,)`` or ``(channels, samples)``; ``None`` writes a silent-free video-only file.
        crf: x264 quality (lower is better; 17 is visually lossless for most material).
    """
    import av

    path = Path(path)
    rate = Fraction(frame_rate).limit_denominator(1001 * 1000)
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w") as out:
            vstream = None
            astream = None
            if audio is not None:
                if not sample_rate:
                    raise InputError("audio given without a sample rate")
                data = np.atleast_2d(np.asarray(audio, dtype=np.float32))
                astream = _add_audio_stream(out, data, sample_rate)
            for image in frames:
                if vstream is None:
                    height, width = image.shape[:2]
                    vstream = out.add_stream("libx264", rate=rate)
                    vstream.width, vstream.height = width - width % 2, height - height % 2
                    vstream.pix_fmt = "yuv420p"
                    vstream.options = {"crf": str(crf), "preset": preset}
                if image.shape[0] % 2 or image.shape[1] % 2:
                    image = image[: vstream.height, : vstream.width]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                out.mux(vstream.encode(frame))
            if vstream is None:
                raise InputError("no frames to write", path=path)
            out.mux(vstream.encode(None))
            if astream is not None:
                _encode_audio(out, astream, np.clip(data[:2], -1.0, 1.0))
    return path



def replace_audio(video: str | Path, output: str | Path, audio: np.ndarray, sample_rate: int, crf: int = 17,
                  preset: str = "ultrafast") -> Path:
    """Write ``video``'s picture with ``audio`` (AAC) to ``output``, atomically.

    An H.264 picture is copied packet by packet (bit-exact, fast). Any other codec is re-encoded to H.264 from the
    decoded pictures themselves, without a round trip through RGB, so the colours stay those of the input (the
    colour tags are copied too). ``preset`` trades file size for speed; the quality is set by ``crf`` (at 17,
    ``ultrafast`` keeps Megamind.avi at 49.9 dB PSNR against its decoded pictures, ``superfast`` at 50.2 dB, in
    half the time, with a file 1.6 times larger). Frames are written at the input's average frame rate.
    """
    import av

    info = probe(video)
    if info.codec != "h264" and (info.width % 2 or info.height % 2):  # yuv420p needs even sizes: crop in RGB
        return write_video(output, iter_frames(video), info.frame_rate, audio, sample_rate, crf=crf, preset=preset)
    output = Path(output)
    data = np.clip(np.atleast_2d(np.asarray(audio, dtype=np.float32))[:2], -1.0, 1.0)
    with atomic_path(output) as tmp:
        with _open(video) as inp, av.open(str(tmp), mode="w") as out:
            vin = inp.streams.video[0]
            if info.codec == "h264":
                vout = out.add_stream_from_template(vin)
            else:
                vout = out.add_stream("libx264", rate=Fraction(info.frame_rate).limit_denominator(1001 * 1000))
                vout.width, vout.height, vout.pix_fmt = info.width, info.height, "yuv420p"
                vout.options = {"crf": str(crf), "preset": preset}
                for tag in ("color_range", "colorspace", "color_primaries", "color_trc"):
                    if getattr(vin.codec_context, tag, None):
                        setattr(vout.codec_context, tag, getattr(vin.codec_context, tag))
            astream = _add_audio_stream(out, data, sample_rate)
            try:
                if info.codec == "h264":
                    for packet in inp.demux(vin):
                        if packet.dts is None:
                            continue
                        packet.stream = vout
                        out.mux(packet)
                else:
                    vin.thread_type = "AUTO"
                    for frame in inp.decode(vin):
                        frame.pts = None  # frames follow one another at the output's constant rate
                        frame.pict_type = av.video.frame.PictureType.NONE  # the encoder picks its frame types
                        out.mux(vout.encode(frame))
                    out.mux(vout.encode(None))
            except Exception as exc:
                if type(exc).__module__.startswith("av"):
                    raise VideoDecodeError(f"reading the picture failed ({exc})", path=video,
                                           fix="re-export the video") from exc
                raise
            _encode_audio(out, astream, data)
    return output


def _add_audio_stream(out, data: np.ndarray, sample_rate: int):
    """An AAC stream (192 kbit/s) for ``data`` ``(channels, samples)``, mono or stereo.

    FFmpeg's 'fast' AAC coder is used: at this rate it is both faster (2.7 times on an 11 s mono line) and closer
    to the input (48 dB signal-to-error ratio against 40 dB for the default 'twoloop' coder on the same line).
    Options must be set here: the container opens every encoder when the first packet is muxed.
    """
    stream = out.add_stream("aac", rate=int(sample_rate), layout="mono" if data.shape[0] == 1 else "stereo")
    stream.bit_rate = 192_000
    stream.options = {"aac_coder": "fast"}
    return stream


def _encode_audio(out, stream, data: np.ndarray) -> None:
    import av

    chunk = 1024 * 16
    pts = 0
    planar = np.ascontiguousarray(data.astype(np.float32))
    layout = "mono" if planar.shape[0] == 1 else "stereo"
    for start in range(0, planar.shape[1], chunk):
        block = np.ascontiguousarray(planar[:, start:start + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
        frame.sample_rate = stream.rate
        frame.pts = pts
        pts += block.shape[1]
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
