"""Where each frame's bytes lie in a DICOM file, without reading the pixel data.

Native (uncompressed) frames sit at fixed strides. Encapsulated frames are located from the
Extended Offset Table, else the Basic Offset Table, else one scan of the fragment item
headers (8 bytes each) at open, cached as frame -> [(file offset, length), ...].
All reads use `os.pread`, so one file descriptor serves any order of access.
"""

from __future__ import annotations

import os
import struct

from thyrovid.errors import VideoError

ITEM = 0xE000FFFE  # (FFFE,E000) read as little-endian uint32: group in the low half
SEQ_DELIMITER = 0xE0DDFFFE  # (FFFE,E0DD)
# Bytes that open a frame's codestream: JPEG SOI, JPEG 2000 SOC, JP2 signature box.
_FRAME_STARTS = (b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP")
_PIXEL_DATA_TAG = (0x7FE0, 0x0010)
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}


def pread_exact(fd: int, length: int, offset: int, path: str, what: str) -> bytes:
    """Read exactly `length` bytes at `offset` or raise VideoError (truncated file)."""
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise VideoError(f"{path}: file is truncated ({what} ends past the end of the file)")
    return data


def _item_header(fd: int, offset: int, path: str) -> tuple[int, int]:
    tag, length = struct.unpack("<II", pread_exact(fd, 8, offset, path, "encapsulated pixel data"))
    return tag, length


def _fragment_length(fd: int, offset: int, path: str) -> int | None:
    """Length of the fragment item at `offset`; None at the sequence delimiter."""
    tag, length = _item_header(fd, offset, path)
    if tag == SEQ_DELIMITER:
        return None
    if tag != ITEM:
        raise VideoError(f"{path}: corrupt encapsulated pixel data (bad item tag at byte {offset})")
    return length


def pixel_data_value(fd: int, path: str, tag_offset: int, syntax: str) -> tuple[int, int, bytes]:
    """(value offset, value length, VR) of the Pixel Data element whose tag is at `tag_offset`.

    Length 0xFFFFFFFF means undefined (encapsulated); VR is b"" for implicit VR."""
    head = os.pread(fd, 12, tag_offset)
    little = syntax != "1.2.840.10008.1.2.2"
    if len(head) < 8 or struct.unpack("<HH" if little else ">HH", head[:4]) != _PIXEL_DATA_TAG:
        raise VideoError(f"{path}: no pixel data (not an image, or the file is truncated)")
    if syntax == "1.2.840.10008.1.2":
        return tag_offset + 8, struct.unpack("<I", head[4:8])[0], b""
    vr = head[4:6]
    if vr in _LONG_VRS:
        if len(head) < 12:
            raise VideoError(f"{path}: file is truncated (in the pixel data header)")
        return tag_offset + 12, struct.unpack("<I" if little else ">I", head[8:12])[0], vr
    return tag_offset + 8, struct.unpack("<H" if little else ">H", head[6:8])[0], vr


class FragmentIndex:
    """Frame -> fragment locations of encapsulated pixel data.

    Args:
        fd: open file descriptor of the DICOM file.
        path: file name, for messages.
        value_offset: file offset of the Pixel Data value (its first item, the Basic Offset Table).
        n_frames: NumberOfFrames.
        file_size: size of the file in bytes.
        extended: (offsets, lengths) from the Extended Offset Table, or None.
    """

    def __init__(self, fd, path, value_offset, n_frames, file_size, extended=None):
        self.fd, self.path, self.n_frames, self.file_size = fd, path, n_frames, file_size
        tag, bot_length = _item_header(fd, value_offset, path)
        if tag != ITEM:
            raise VideoError(f"{path}: encapsulated pixel data does not start with an item tag")
        self.first_fragment = value_offset + 8 + bot_length
        self._spans: list[tuple[int, int]] | None = None  # frame -> (start, end) of its items
        self._frames: dict[int, list[tuple[int, int]]] = {}
        if extended is not None and len(extended[0]) == n_frames:
            offsets, lengths = extended
            # The Extended Offset Table requires one fragment per frame.
            for i, (off, length) in enumerate(zip(offsets, lengths, strict=True)):
                self._frames[i] = [(self.first_fragment + int(off) + 8, int(length))]
            self.source = "extended offset table"
        elif bot_length and bot_length == 4 * n_frames:
            bot = struct.unpack(
                f"<{n_frames}I", pread_exact(fd, bot_length, value_offset + 8, path, "offset table")
            )
            starts = [self.first_fragment + o for o in bot]
            if any(b <= a for a, b in zip(starts, starts[1:])) or starts[-1] >= file_size:
                self._scan()
            else:
                self._spans = [(s, e) for s, e in zip(starts, starts[1:] + [None])]
                self.source = "basic offset table"
        else:
            self._scan()
        self._check_bounds()

    def _scan(self) -> None:
        """Read every item header once; group fragments into frames."""
        fragments: list[tuple[int, int, bytes]] = []
        pos = self.first_fragment
        while True:
            length = _fragment_length(self.fd, pos, self.path)
            if length is None:
                break
            head = os.pread(self.fd, 4, pos + 8)
            fragments.append((pos + 8, length, head))
            pos += 8 + length
            if pos > self.file_size:
                raise VideoError(
                    f"{self.path}: file is truncated (pixel data fragment ends past the end of the file)"
                )
        self._frames = dict(enumerate(self._group(fragments)))
        self.source = "fragment scan"

    def _group(self, fragments: list[tuple[int, int, bytes]]) -> list[list[tuple[int, int]]]:
        n = self.n_frames
        if len(fragments) == n:
            return [[(off, length)] for off, length, _ in fragments]
        if n == 1:
            return [[(off, length) for off, length, _ in fragments]]
        frames: list[list[tuple[int, int]]] = []
        for off, length, head in fragments:
            if not frames or head.startswith(_FRAME_STARTS):
                frames.append([])
            frames[-1].append((off, length))
        if len(frames) != n:
            raise VideoError(
                f"{self.path}: cannot map {len(fragments)} pixel data fragments to {n} frames "
                "(file truncated or NumberOfFrames wrong)"
            )
        return frames

    def _check_bounds(self) -> None:
        if self._frames:
            if len(self._frames) < self.n_frames:
                raise VideoError(
                    f"{self.path}: file is truncated (fewer frames than NumberOfFrames)"
                )
            off, length = self._frames[self.n_frames - 1][-1]
            if off + length > self.file_size:
                raise VideoError(
                    f"{self.path}: file is truncated (last frame ends past the end of the file)"
                )

    def locate(self, i: int) -> list[tuple[int, int]]:
        """[(file offset, length), ...] of frame i's fragments."""
        if i not in self._frames:
            start, end = self._spans[i]
            parts, pos = [], start
            while end is None or pos < end:
                length = _fragment_length(self.fd, pos, self.path)
                if length is None:
                    break
                parts.append((pos + 8, length))
                pos += 8 + length
            self._frames[i] = parts
        return self._frames[i]

    def read(self, i: int) -> bytes:
        """The encoded bytes of frame i (its fragments joined)."""
        parts = [pread_exact(self.fd, n, off, self.path, f"frame {i}") for off, n in self.locate(i)]
        return parts[0] if len(parts) == 1 else b"".join(parts)
