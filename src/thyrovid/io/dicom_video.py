"""DICOM video transfer syntaxes (MPEG-2, H.264, HEVC: 1.2.840.10008.1.2.4.100-108) via PyAV.

The encapsulated fragments, joined, are one bitstream (PS3.5 8.2.5-8.2.8). `FragmentStream`
exposes them to FFmpeg as a seekable file without copying the stream into memory, and
`Bitstream` decodes forward, keeping its position so that windows asked for in increasing
order are decoded in one pass; asking for an earlier frame restarts from the beginning
(these streams carry no frame index to seek by).
"""

from __future__ import annotations

import io
import os
from bisect import bisect_right
from collections.abc import Iterator

import numpy as np

from thyrovid.errors import VideoError


class FragmentStream(io.RawIOBase):
    """Read-only, seekable view of fragments [(file offset, length), ...] as one byte stream."""

    def __init__(self, fd: int, fragments: list[tuple[int, int]]):
        self._fd = fd
        self._parts = fragments
        self._starts = np.cumsum([0] + [n for _, n in fragments]).tolist()
        self._size = self._starts[-1]
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._size:
            k = bisect_right(self._starts, self._pos) - 1
            offset, length = self._parts[k]
            inside = self._pos - self._starts[k]
            n = min(len(view) - done, length - inside)
            data = os.pread(self._fd, n, offset + inside)
            if not data:
                break
            view[done : done + len(data)] = data
            done += len(data)
            self._pos += len(data)
        return done


class Bitstream:
    """Forward decoder of a DICOM video bitstream -> (H, W, 3) uint8 RGB frames.

    Args:
        path: the DICOM file, for messages.
        fd: its open file descriptor.
        fragments: [(file offset, length), ...] of all Pixel Data fragments.
        n_frames: NumberOfFrames.
    """

    def __init__(self, path: str, fd: int, fragments: list[tuple[int, int]], n_frames: int):
        self.path, self._fd, self._fragments, self.n_frames = path, fd, fragments, n_frames
        self._container = None
        self._frames: Iterator | None = None
        self._pos = 0  # index of the next frame the iterator yields

    def _open(self) -> None:
        import av

        self.close()
        try:
            self._container = av.open(FragmentStream(self._fd, self._fragments), mode="r")
            self._frames = self._container.decode(video=0)
        except (av.FFmpegError, IndexError, ValueError) as exc:
            raise VideoError(f"{self.path}: cannot decode the video bitstream ({exc})") from None
        self._pos = 0

    def decode(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (i, frame) for sorted distinct `indices`, decoding forward."""
        import av

        if self._frames is None or (indices and indices[0] < self._pos):
            self._open()
        for i in indices:
            try:
                while True:
                    frame = next(self._frames, None)
                    if frame is None:
                        raise VideoError(
                            f"{self.path}: video bitstream ends after {self._pos} frames "
                            f"(NumberOfFrames says {self.n_frames})"
                        )
                    self._pos += 1
                    if self._pos - 1 == i:
                        yield i, frame.to_ndarray(format="rgb24")
                        break
            except av.FFmpegError as exc:
                self._frames = None
                raise VideoError(
                    f"{self.path}: cannot decode frame {i} of the video bitstream ({exc})"
                ) from None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._frames = None, None
