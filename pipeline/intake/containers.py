"""Is a recording file complete? Checks of the container's own structure, for cuts a decoder hides.

A file cut short (interrupted upload or copy) decodes up to the cut without complaint in formats
that do not state their length: a CBR mp3 without a Xing/LAME header (ffprobe estimates its
length from the file size, so the estimate shrinks with the cut), and Ogg (its length is read from
the last page present). Each check reads the structure the format guarantees of a finished file:
WAV's declared size, every mp3 frame whole, Ogg's last page whole and flagged end-of-stream,
every top-level MP4 box whole.
Each returns the reason a file is incomplete, or None.
"""
from __future__ import annotations

from pathlib import Path

# MPEG audio bitrates (kbit/s) by [MPEG-1?][layer] and index; 0 = free format (not walkable).
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def wav_incomplete(data: bytes, size: int) -> str | None:
    """The RIFF header declares the file's size; streamed WAVs (0 or 0xFFFFFFFF) are let through."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    declared = int.from_bytes(data[4:8], "little") + 8
    if declared not in (8, 0xFFFFFFFF + 8) and size < declared:
        return f"truncated: the WAV header declares {declared} bytes but the file has {size}"
    return None


def _mp3_frame_length(header: bytes) -> int | None:
    """Bytes in the MPEG audio frame starting with `header` (4 bytes), None if it is not a frame header."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index, padding = header[2] >> 4, (header[2] >> 2) & 3, (header[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer, mpeg1 = 4 - layer_bits, version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    return (144 if layer == 2 or mpeg1 else 72) * bitrate // rate + padding


def mp3_incomplete(data: bytes) -> str | None:
    """Walk the frames from the first: the last one must end inside the file. Stops, without a verdict,
    where frames give way to something else (an ID3v1/APE tag, or data it cannot follow)."""
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # ID3v2 tag: syncsafe size, plus a footer when flagged
        pos = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10])) + (10 if data[5] & 0x10 else 0)
    frames = 0
    while pos < len(data):
        length = _mp3_frame_length(data[pos:pos + 4])
        if not length:
            break
        if pos + length > len(data):
            if frames == 0:
                return None  # not an mp3 frame sequence we can follow
            return (f"truncated: the last mp3 frame (number {frames + 1}) needs {length} bytes "
                    f"but the file ends {len(data) - pos} bytes into it")
        pos += length
        frames += 1
    return None


def ogg_incomplete(data: bytes) -> str | None:
    """Walk the pages: each must be whole and the last must carry the end-of-stream flag."""
    pos, last_flags, pages = 0, None, 0
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS":
            if not pages:
                return None  # not an Ogg page sequence we can follow
            break  # bytes after the pages that are not a page: judge by the pages read
        if len(data) < pos + 27 or len(data) < pos + 27 + data[pos + 26]:
            return f"truncated: Ogg page {pages + 1} is cut off in its header"
        n_segments = data[pos + 26]
        length = 27 + n_segments + sum(data[pos + 27:pos + 27 + n_segments])
        if pos + length > len(data):
            return (f"truncated: Ogg page {pages + 1} needs {length} bytes but the file ends "
                    f"{len(data) - pos} bytes into it")
        last_flags, pos, pages = data[pos + 5], pos + length, pages + 1
    if pages and not last_flags & 0x04:
        return f"truncated: the last Ogg page (of {pages}) is not marked end-of-stream: the recording was cut short"
    return None


def mp4_incomplete(path: Path) -> str | None:
    """Walk the top-level boxes (ftyp, moov, mdat...): each declares its size, the last must end in the file."""
    size, pos = path.stat().st_size, 0
    with path.open("rb") as fh:
        while pos + 8 <= size:
            fh.seek(pos)
            header = fh.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:  # 64-bit size follows the type
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:  # the box runs to the end of the file
                return None
            if length < 8 or not kind.isascii():
                return None  # not a box layout we can follow
            if pos + length > size:
                return (f"truncated: the MP4/M4A '{kind.decode(errors='replace')}' box needs {length} bytes "
                        f"but the file ends {size - pos} bytes into it")
            pos += length
    return None


def incomplete(path: Path, format_name: str) -> str | None:
    """Why the file at `path` (ffprobe's format name) is not complete, or None when it is or cannot be told."""
    kinds = set(format_name.split(","))
    if kinds & {"wav"}:
        with path.open("rb") as fh:
            return wav_incomplete(fh.read(12), path.stat().st_size)
    if kinds & {"mp4", "m4a", "mov"}:
        return mp4_incomplete(path)
    if kinds & {"mp3", "ogg"}:
        data = path.read_bytes()
        return mp3_incomplete(data) if "mp3" in kinds else ogg_incomplete(data)
    return None
