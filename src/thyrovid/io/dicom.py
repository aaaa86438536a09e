"""DICOM cine clips (Ultrasound Multi-frame Image Storage and friends), decoded frame by frame.

Opening reads the header only (pydicom, stop_before_pixels) and locates the Pixel Data
value; `frames(indices)` then reads just those frames' bytes:

- JPEG Baseline (8-bit): the frame's fragments go straight to OpenCV's `imdecode`
  (libjpeg-turbo); the JPEG's own YCbCr -> RGB transform is applied by libjpeg, as
  pydicom's decoders do for YBR_FULL_422 / YBR_FULL.
- Native (uncompressed, little or big endian, 8/16 bit, planar or interleaved): the frame's
  bytes are read at their fixed offset and viewed with numpy.
- JPEG Lossless (Process 14 and its Selection Value 1, common on older ultrasound archives)
  and JPEG Extended (12-bit): decoded with imagecodecs (BSD; libjpeg-turbo 3, which reads
  SOF3 lossless and 12-bit streams) when it is installed (`pip install thyrovid[ljpeg]`); the
  samples come back as stored, as pydicom with GDCM gives them. Without it, pydicom's
  decoders are tried (python-gdcm, also BSD, decodes lossless JPEG; the pylibjpeg-libjpeg
  plugin is GPL and never suggested).
- Other compressed syntaxes (JPEG 2000, JPEG-LS, RLE): the frame's bytes are passed to
  pydicom's decoder for that syntax, one frame at a time.
- Video syntaxes (MPEG-2, H.264, HEVC): the encapsulated bitstream is decoded with PyAV.

Output: uint8, (H, W, 3) RGB (colour, YBR converted, PALETTE COLOR through its LUT) or
(H, W, 1) grey (MONOCHROME1 inverted; >8-bit grey mapped to 8 bits, see
`dicom_meta.grey_range`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator

import cv2
import numpy as np
from pydicom.uid import UID

from thyrovid.errors import VideoError, plain
from thyrovid.io import dicom_meta
from thyrovid.io.base import Video, VideoInfo
from thyrovid.io.fragments import FragmentIndex, pixel_data_value, pread_exact

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
NATIVE = {IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE}
VIDEO_SYNTAXES = {f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109)}
# Package that provides a pydicom decoder, by transfer syntax (non-GPL where one exists).
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.51": "pillow",
    "1.2.840.10008.1.2.4.57": "imagecodecs",
    "1.2.840.10008.1.2.4.70": "imagecodecs",
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}
# Decoded by imagecodecs when it is installed: JPEG Extended, JPEG Lossless P14 and P14 SV1.
IMAGECODECS_SYNTAXES = {
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
}
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")  # PS3.5 9.1: no leading zeros
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.11
_JPEG_PHOTOMETRICS = {
    "YBR_FULL_422",
    "YBR_FULL",
    "RGB",
    "MONOCHROME1",
    "MONOCHROME2",
    "PALETTE COLOR",
}


# Larger frames are not ultrasound: a header claiming them is refused before any allocation.
MAX_SIDE = 16384
# A compressed frame decoding to more than this many bytes must hold at least
# 1/MAX_RATIO of them (a 60000x60000 claim on a few kilobytes is refused before decoding).
LARGE_FRAME = 64 * 2**20
MAX_RATIO = 2000


def _decoder_failure(exc: BaseException) -> None:
    """Re-raise what is no decoding failure (Ctrl-C, exit). A decoder raises Exception on
    corrupt data, or, for pyo3 (Rust) plugins such as pylibjpeg-rle, a PanicException,
    which derives from BaseException."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc


def _one_line(exc: BaseException, limit: int = 200) -> str:
    return dicom_meta.one_line(plain(exc) if isinstance(exc, OSError) else exc, limit)


def _starts_like_a_dataset(path: str) -> bool:
    """True when the file starts with a file-meta (0002) or identifying (0008) group tag:
    a DICOM file written without its 128-byte preamble and 'DICM' marker (older devices)."""
    with open(path, "rb") as fp:
        head = fp.read(4)
    return head[:2] in (b"\x02\x00", b"\x08\x00")


def read_header(path: str):
    """Read the DICOM header (no pixel data). Returns (dataset, offset of the Pixel Data tag).

    A file without the preamble is read too when it starts with a group 0002 or 0008 tag.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with open(path, "rb") as fp, warnings.catch_warnings():
            # pydicom warns about tolerable header quirks; they would break one-line errors.
            warnings.simplefilter("ignore")
            force = _starts_like_a_dataset(path)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=force)
            return ds, fp.tell()
    except InvalidDicomError:
        if os.path.getsize(path) == 0:
            raise VideoError(f"{path}: not a DICOM file (the file is empty)") from None
        raise VideoError(f"{path}: not a DICOM file (no 'DICM' marker at byte 128)") from None
    except OSError as exc:
        raise VideoError(f"{path}: cannot read file ({_one_line(exc)})") from None
    except Exception as exc:  # pydicom raises many types on corrupt or truncated headers
        raise VideoError(f"{path}: corrupt or truncated DICOM header ({_one_line(exc)})") from None


class DicomVideo(Video):
    """A DICOM multi-frame (or single-frame) image read lazily. See the module docstring.

    Args:
        path: the DICOM file.

    Raises:
        VideoError: not a DICOM, truncated, no pixel data, unsupported or undecodable syntax.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self._fd = None
        ds, tag_offset = read_header(self.path)
        header = dicom_meta.Header(ds, self.path)
        meta = getattr(ds, "file_meta", None)
        syntax = (
            dicom_meta.Header(meta, self.path).text("TransferSyntaxUID")
            if meta is not None
            else None
        )
        self.syntax = syntax or IMPLICIT_LE
        if len(self.syntax) > 64 or not _UID.fullmatch(self.syntax):
            raise VideoError(
                f"{self.path}: DICOM attribute TransferSyntaxUID {dicom_meta.one_line(repr(self.syntax), 80)} "
                "is not a UID; fix the file meta"
            )
        self._read_geometry(header)
        # Kept for duplicate detection only (thyrovid check hashes it); never written out.
        self.instance_uid = header.text("SOPInstanceUID")
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            self._locate_pixels(header, tag_offset)
            self._prepare_conversion(header)
            self.info = self._make_info(header)
        except BaseException:
            self.close()
            raise

    # -- opening --------------------------------------------------------------------------
    def _read_geometry(self, h: dicom_meta.Header) -> None:
        if not all(h.present(k) for k in ("Rows", "Columns", "BitsAllocated")):
            raise VideoError(
                f"{self.path}: no pixel data (not an image: no Rows/Columns/BitsAllocated)"
            )
        # The values the pixels depend on: present but wrong is an error, never a guess.
        self.rows = h.integer("Rows", required=True, minimum=0, maximum=2**32)
        self.cols = h.integer("Columns", required=True, minimum=0, maximum=2**32)
        self.bits_allocated = h.integer("BitsAllocated", required=True, minimum=0, maximum=64)
        self.samples = h.integer("SamplesPerPixel", 1, strict=True, minimum=1, maximum=4)
        self.bits_stored = h.integer(
            "BitsStored", self.bits_allocated, strict=True, minimum=1, maximum=64
        )
        self.signed = h.integer("PixelRepresentation", 0, strict=True, minimum=0, maximum=1) == 1
        self.planar = h.integer("PlanarConfiguration", 0, strict=True, minimum=0, maximum=1)
        self.photometric = (h.text("PhotometricInterpretation") or "MONOCHROME2").upper()
        self.n_frames = h.integer("NumberOfFrames", 1, strict=True, minimum=0, maximum=2**31)
        if self.rows <= 0 or self.cols <= 0 or self.n_frames <= 0:
            raise VideoError(
                f"{self.path}: empty image (Rows {self.rows}, Columns {self.cols}, "
                f"NumberOfFrames {self.n_frames})"
            )
        if self.rows > MAX_SIDE or self.cols > MAX_SIDE:
            raise VideoError(
                f"{self.path}: Rows x Columns {self.rows}x{self.cols} is not an ultrasound frame "
                f"(at most {MAX_SIDE} pixels a side); fix the header"
            )
        if self.bits_stored > self.bits_allocated:
            raise VideoError(
                f"{self.path}: BitsStored {self.bits_stored} exceeds BitsAllocated "
                f"{self.bits_allocated}; fix the header"
            )
        if self.samples not in (1, 3) or self.bits_allocated not in (8, 16):
            raise VideoError(
                f"{self.path}: unsupported pixel format (SamplesPerPixel {self.samples}, "
                f"BitsAllocated {self.bits_allocated}); expected 1 or 3 samples of 8 or 16 bits"
            )

    def _locate_pixels(self, h: dicom_meta.Header, tag_offset: int) -> None:
        if self.syntax == "1.2.840.10008.1.2.1.99":
            raise VideoError(
                f"{self.path}: deflated transfer syntax is not supported; re-save it uncompressed"
            )
        size = os.fstat(self._fd).st_size
        value_offset, length, vr = pixel_data_value(self._fd, self.path, tag_offset, self.syntax)
        self._value_offset = value_offset
        self._bitstream = None
        # 8-bit samples stored as OW in big endian are byte-swapped in 16-bit words.
        self._swap_words = self.syntax == EXPLICIT_BE and vr == b"OW" and self.bits_allocated == 8
        self._index = None
        if self.syntax in NATIVE:
            if length == 0xFFFFFFFF:
                raise VideoError(
                    f"{self.path}: native transfer syntax with encapsulated pixel data"
                )
            per_pixel = 2 if self.photometric == "YBR_FULL_422" else self.samples
            self._frame_length = self.rows * self.cols * per_pixel * self.bits_allocated // 8
            needed = self._frame_length * self.n_frames
            held = min(length, size - value_offset)
            if length < needed and value_offset + length <= size and length >= self._frame_length:
                raise VideoError(
                    f"{self.path}: NumberOfFrames says {self.n_frames} but the pixel data holds "
                    f"{length // self._frame_length} frames ({length} bytes); fix the header"
                )
            if length < needed or value_offset + needed > size:
                raise VideoError(
                    f"{self.path}: file is truncated (pixel data holds {held} "
                    f"bytes, {self.n_frames} frames need {needed})"
                )
            if length - needed >= self._frame_length:
                raise VideoError(
                    f"{self.path}: NumberOfFrames says {self.n_frames} but the pixel data holds "
                    f"{length // self._frame_length} frames ({length} bytes); fix the header"
                )
            self.decoder = "native"
            return
        if length != 0xFFFFFFFF:
            raise VideoError(
                f"{self.path}: compressed transfer syntax {self.syntax} without encapsulated pixel data"
            )
        extended = self._extended_offsets(h, value_offset, size)
        if self.syntax in VIDEO_SYNTAXES:
            # One bitstream over all fragments; frames are found by decoding it.
            self._index = FragmentIndex(self._fd, self.path, value_offset, 1, size)
            self.decoder = "pyav"
            return
        self._index = FragmentIndex(
            self._fd, self.path, value_offset, self.n_frames, size, extended
        )
        if self._fast_jpeg_ok():
            self.decoder = "opencv"
        elif self.syntax in IMAGECODECS_SYNTAXES and _imagecodecs() is not None:
            self.decoder = "imagecodecs"
        else:
            self.decoder = "pydicom"
            self._check_pydicom_decoder()

    def _extended_offsets(self, h: dicom_meta.Header, value_offset: int, size: int):
        """(offsets, lengths) of the Extended Offset Table, or None (with a note) when it is
        absent or does not fit the file (the fragments are then scanned)."""
        offsets, lengths = (
            h.raw_bytes("ExtendedOffsetTable"),
            h.raw_bytes("ExtendedOffsetTableLengths"),
        )
        if offsets is None or lengths is None:
            return None
        if len(offsets) % 8 or len(offsets) != len(lengths):
            h._note("ExtendedOffsetTable", "its length is not 8 bytes per frame")
            return None
        offsets, lengths = np.frombuffer(offsets, "<u8"), np.frombuffer(lengths, "<u8")
        ends = (int(o) + int(n) for o, n in zip(offsets.tolist(), lengths.tolist(), strict=True))
        if offsets.size and max(ends) > size - value_offset:
            h._note("ExtendedOffsetTable", "offsets past the end of the file")
            return None
        return offsets, lengths

    def _fast_jpeg_ok(self) -> bool:
        """JPEG Baseline 8-bit whose colour handling by libjpeg matches pydicom's (frame 0)."""
        if (
            self.syntax != JPEG_BASELINE
            or self.bits_allocated != 8
            or self.photometric not in _JPEG_PHOTOMETRICS
        ):
            return False
        if self.samples == 1:
            return True
        return dicom_meta.libjpeg_transforms(self._index.read(0)) == self.photometric.startswith(
            "YBR"
        )

    def _check_pydicom_decoder(self) -> None:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(self.syntax)
        except (NotImplementedError, ValueError):
            raise VideoError(
                f"{self.path}: no decoder exists for transfer syntax {self.syntax}"
            ) from None
        if not decoder.is_available:
            package = _DECODER_PACKAGES.get(self.syntax, "a pydicom pixel data plugin")
            raise VideoError(
                f"{self.path}: no decoder installed for transfer syntax {self.syntax} "
                f"({decoder.UID.name}); install {package}"
            )
        self._pydicom_decoder = decoder

    def _prepare_conversion(self, h: dicom_meta.Header) -> None:
        self._lut = None
        self._grey = None
        if self.photometric == "PALETTE COLOR":
            try:
                self._lut = dicom_meta.palette_table(h.ds, self.bits_allocated)
            except Exception as exc:
                raise VideoError(
                    f"{self.path}: PALETTE COLOR without a usable lookup table ({_one_line(exc)})"
                ) from None
        elif self.bits_allocated > 8 or self.signed:
            # Signed 8-bit grey too: its negative samples are not all black.
            self._grey = dicom_meta.grey_range(h, self.bits_stored, self.signed)

    def _make_info(self, h: dicom_meta.Header) -> VideoInfo:
        colour = self.samples == 3 or self.photometric == "PALETTE COLOR"
        extra = {
            "transfer_syntax": self.syntax,
            "transfer_syntax_name": _syntax_name(self.syntax),
            "photometric": self.photometric,
            "bits_allocated": self.bits_allocated,
            "modality": h.text("Modality"),
            "manufacturer": h.text("Manufacturer"),
            "manufacturer_model": h.text("ManufacturerModelName"),
            "decoder": self.decoder,
        }
        if self._index is not None:
            extra["frame_index"] = self._index.source
        fps = dicom_meta.frame_rate(h)
        spacing = dicom_meta.pixel_spacing_mm(h)
        region = dicom_meta.region_box(h, self.cols, self.rows)
        if h.notes:
            extra["header_notes"] = list(h.notes)
        return VideoInfo(
            format="dicom",
            n_frames=self.n_frames,
            height=self.rows,
            width=self.cols,
            channels=3 if colour else 1,
            fps=fps,
            pixel_spacing_mm=spacing,
            region=region,
            extra=extra,
        )

    # -- decoding -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._fd is None:
            raise VideoError(f"{self.path}: video is closed")

    def _decode_sorted(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        if self.decoder != "pyav":
            return ((i, self._decode(i)) for i in indices)
        if self._bitstream is None:
            from thyrovid.io.dicom_video import Bitstream

            self._bitstream = Bitstream(self.path, self._fd, self._index.locate(0), self.n_frames)
        return self._bitstream.decode(indices)

    def encoded_frame(self, i: int) -> bytes | None:
        """Frame i's bytes as stored (no decoding; None for video syntaxes): equal for two
        files with the same pixel data, whatever their headers say."""
        self._check_open()
        i = self._check_index(i)
        if self.decoder == "native":
            offset = self._value_offset + i * self._frame_length
            return pread_exact(self._fd, self._frame_length, offset, self.path, f"frame {i}")
        if self.decoder == "pyav":
            return None
        return self._index.read(i)

    def _read(self, i: int) -> np.ndarray:
        return next(iter(self._decode_sorted([i])))[1]

    def _decode(self, i: int) -> np.ndarray:
        if self._index is not None:
            self._check_ratio(i)
        if self.decoder == "native":
            arr, photometric = self._decode_native(i), self.photometric
        elif self.decoder == "opencv":
            arr, photometric = self._decode_jpeg(i)
        elif self.decoder == "imagecodecs":
            arr, photometric = self._decode_imagecodecs(i)
        else:
            arr, photometric = self._decode_pydicom(i)
        return self._to_uint8(arr, photometric, i)

    def _check_ratio(self, i: int) -> None:
        """Refuse, before decoding, a large frame its compressed bytes cannot hold."""
        decoded = self.rows * self.cols * self.samples * max(1, self.bits_allocated // 8)
        if decoded <= LARGE_FRAME:
            return
        held = sum(n for _, n in self._index.locate(i))
        if held * MAX_RATIO < decoded:
            raise VideoError(
                f"{self.path}: frame {i} holds {held} compressed bytes, too few for a "
                f"{self.rows}x{self.cols} frame; Rows/Columns are wrong"
            )

    def _decode_native(self, i: int) -> np.ndarray:
        offset = self._value_offset + i * self._frame_length
        if self._swap_words:
            data = self._read_swapped(offset)
        else:
            data = pread_exact(self._fd, self._frame_length, offset, self.path, f"frame {i}")
        if self.photometric == "YBR_FULL_422":
            return self._pydicom_native(data)
        endian = ">" if self.syntax == EXPLICIT_BE else "<"
        dtype = np.dtype(f"{endian}{'i' if self.signed else 'u'}{self.bits_allocated // 8}")
        arr = np.frombuffer(data, dtype)
        if self.samples == 3 and self.planar == 1:
            arr = arr.reshape(3, self.rows, self.cols).transpose(1, 2, 0)
        else:
            arr = arr.reshape(self.rows, self.cols, self.samples)
        if self.bits_allocated > 8 and self.bits_stored < self.bits_allocated:
            # Drop bits above BitsStored (overlays, garbage), sign-extending signed data.
            shift = self.bits_allocated - self.bits_stored
            arr = (arr.astype(dtype.newbyteorder("=")) << shift) >> shift
        return arr

    def _read_swapped(self, offset: int) -> bytes:
        """Frame bytes at `offset` of 16-bit-word-swapped 8-bit data (big endian OW)."""
        rel = offset - self._value_offset
        start, end = rel & ~1, (rel + self._frame_length + 1) & ~1
        raw = os.pread(self._fd, end - start, self._value_offset + start)
        if len(raw) < rel + self._frame_length - start:
            raise VideoError(
                f"{self.path}: file is truncated (frame ends past the end of the file)"
            )
        raw += b"\0" * (len(raw) % 2)  # an odd-length value's last word, padded
        words = np.frombuffer(raw, ">u2").astype("<u2").tobytes()
        return words[rel - start : rel - start + self._frame_length]

    def _pydicom_native(self, data: bytes) -> np.ndarray:
        from pydicom.pixels import get_decoder

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                arr, _ = get_decoder(self.syntax).as_array(data, raw=True, **self._options(1))
        except Exception as exc:  # the header's geometry does not fit the frame's bytes
            raise VideoError(f"{self.path}: cannot decode a frame ({_one_line(exc)})") from None
        return arr

    def _decode_jpeg(self, i: int) -> tuple[np.ndarray, str]:
        buf = np.frombuffer(self._index.read(i), np.uint8)
        # libjpeg reports a corrupt or cut stream only as a warning on stderr and returns the
        # frame anyway: capture it, and refuse the frame.
        with dicom_meta.captured_stderr() as noise:
            try:
                if self.samples == 1:
                    arr = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
                elif _IMREAD_RGB is not None:
                    # libjpeg-turbo writes RGB directly (its YCbCr -> RGB transform, no BGR swap).
                    arr = cv2.imdecode(buf, _IMREAD_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
                else:
                    arr = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
                    arr = None if arr is None else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
            except cv2.error:  # e.g. an empty fragment
                arr = None
        if noise and arr is not None:
            raise VideoError(
                f"{self.path}: frame {i} is corrupt (libjpeg: {_one_line(noise[0], 100)})"
            )
        if arr is None or arr.shape[:2] != (self.rows, self.cols):
            # Not something libjpeg-turbo accepts as a frame of the declared size:
            # let pydicom's decoder have its say (and raise a clear error if it fails too).
            return self._decode_pydicom(i)
        return arr, "RGB" if self.samples == 3 else self.photometric

    def _decode_imagecodecs(self, i: int) -> tuple[np.ndarray, str]:
        """One JPEG (lossless or extended) frame, samples as stored (no colour transform)."""
        codecs = _imagecodecs()
        try:
            arr = codecs.jpeg8_decode(
                self._index.read(i), colorspace="UNKNOWN", outcolorspace="UNKNOWN"
            )
        except BaseException as exc:  # noqa: BLE001 - a Rust plugin's panic is one
            _decoder_failure(exc)
            raise VideoError(f"{self.path}: cannot decode frame {i} ({_one_line(exc)})") from None
        want = (self.rows, self.cols) + ((self.samples,) if self.samples > 1 else ())
        if arr.shape != want:
            raise VideoError(
                f"{self.path}: frame {i} decoded as {arr.shape}, the header says {want}"
            )
        if self.signed and arr.dtype.kind == "u":
            arr = arr.view(arr.dtype.str.replace("u", "i"))
            if self.bits_stored < self.bits_allocated:  # sign-extend from BitsStored
                shift = self.bits_allocated - self.bits_stored
                arr = (arr << shift) >> shift
        return arr, self.photometric

    def _decode_pydicom(self, i: int) -> tuple[np.ndarray, str]:
        from pydicom.encaps import encapsulate

        if not hasattr(self, "_pydicom_decoder"):
            self._check_pydicom_decoder()
        data = encapsulate([self._index.read(i)], has_bot=False)
        try:
            with warnings.catch_warnings(), dicom_meta.captured_stderr() as noise:
                warnings.simplefilter("error")  # a decoder's warning: this frame is not sound
                arr, meta = self._pydicom_decoder.as_array(data, index=0, **self._options(1))
        except BaseException as exc:  # noqa: BLE001 - a Rust plugin's panic is one
            _decoder_failure(exc)
            raise VideoError(f"{self.path}: cannot decode frame {i} ({_one_line(exc)})") from None
        if noise:
            raise VideoError(
                f"{self.path}: frame {i} is corrupt (decoder: {_one_line(noise[0], 100)})"
            )
        return arr, str(meta.get("photometric_interpretation", self.photometric))

    def _options(self, n_frames: int) -> dict:
        options = dict(
            rows=self.rows,
            columns=self.cols,
            samples_per_pixel=self.samples,
            bits_allocated=self.bits_allocated,
            bits_stored=self.bits_stored,
            pixel_representation=int(self.signed),
            photometric_interpretation=self.photometric,
            number_of_frames=n_frames,
            pixel_keyword="PixelData",
            transfer_syntax_uid=UID(self.syntax),
        )
        if self.samples > 1:
            options["planar_configuration"] = self.planar
        return options

    def _to_uint8(self, arr: np.ndarray, photometric: str, i: int) -> np.ndarray:
        """Decoded samples -> (H, W, C) uint8 in this video's channel layout."""
        if arr.ndim == 2:
            arr = arr[..., None]
        if photometric == "PALETTE COLOR" and arr.shape[-1] == 1:
            values = arr[..., 0].astype(
                np.uint16 if self.bits_allocated > 8 else np.uint8, copy=False
            )
            return self._lut[values]
        if photometric in ("YBR_FULL", "YBR_FULL_422") and arr.shape[-1] == 3:
            from pydicom.pixels import convert_color_space

            arr = convert_color_space(arr, "YBR_FULL", "RGB")
        if arr.dtype != np.uint8:
            lo, hi = self._grey if self._grey is not None else (0.0, float(2**self.bits_stored - 1))
            arr = dicom_meta.to_uint8(arr, lo, hi)
        if photometric == "MONOCHROME1":
            arr = 255 - arr
        if arr.shape[-1] != self.info.channels:
            raise VideoError(
                f"{self.path}: frame {i} decoded with {arr.shape[-1]} channels, expected {self.info.channels}"
            )
        return arr

    def close(self) -> None:
        if getattr(self, "_bitstream", None) is not None:
            self._bitstream.close()
            self._bitstream = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def _imagecodecs():
    """The imagecodecs module when installed with its JPEG decoder, else None."""
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs if getattr(imagecodecs, "JPEG8", None) is not None else None


def _syntax_name(uid: str) -> str:
    return UID(uid).name
