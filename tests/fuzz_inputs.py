"""Byte-mutation fuzzing of the DICOM reader and the table loader (tests/io/test_fuzz.py).

Seeds are small DICOMs written here (native grey with an ultrasound region, JPEG Baseline
grey and colour with an offset table, 16-bit signed grey with a VOI window, planar RGB) and a
small cohort.csv. A mutation is a list of byte edits biased towards the header, where a value
that does not parse used to end in a traceback. `check_dicom` / `check_table` return None when
the input is read or refused with one `UserError` line, else the traceback's last line.

Run alone for a time-bounded campaign with counts, hangs and peak RSS as JSON:

    python tests/fuzz_inputs.py --seconds 300 [--target dicom|table]
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

JUNK = [
    b"",
    b"-1",
    b"0",
    b"1e309",
    b"nan",
    b"abc",
    b"\\",
    b"60000",
    b"2147483648",
    b"1\\2\\3",
    b"-0",
    b"\x00",
    b"\xff\xfe",
    b"9" * 12,
]
INTS = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF, 60000, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000]


def _dataset(frames: np.ndarray, **attrs):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
    meta.MediaStorageSOPInstanceUID = "2.25.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = "2.25.1"
    ds.Modality = "US"
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.FrameTimeVector = [0.0] + [40.0] * (frames.shape[0] - 1)
    ds.PixelSpacing = [0.1, 0.1]
    ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    item = Dataset()
    item.RegionLocationMinX0, item.RegionLocationMinY0 = 2, 2
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = frames.shape[2] - 3, frames.shape[1] - 3
    item.RegionSpatialFormat = 1
    item.RegionDataType = 1
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = item.PhysicalDeltaY = 0.01
    ds.SequenceOfUltrasoundRegions = Sequence([item])
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _save(ds) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _video(n=6, h=24, w=32, rgb=False) -> np.ndarray:
    t, y, x = np.mgrid[:n, :h, :w]
    grey = ((x * 5 + y * 3 + t * 11) % 256).astype(np.uint8)
    return np.stack([grey, 255 - grey, grey // 2], -1) if rgb else grey


def seed_dicoms() -> dict[str, bytes]:
    """name -> bytes of the seed DICOM files (deterministic)."""
    import cv2
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    seeds = {}
    grey = _video()
    ds = _dataset(grey)
    ds.PixelData = grey.tobytes()
    seeds["native_grey"] = _save(ds)

    ds = _dataset(grey)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in grey]
    ds.PixelData = encapsulate(jpegs, has_bot=True)
    ds["PixelData"].VR = "OB"
    seeds["jpeg_grey"] = _save(ds)

    rgb = _video(n=3, rgb=True)
    ds = _dataset(rgb, SamplesPerPixel=3, PhotometricInterpretation="YBR_FULL_422")
    ds.PlanarConfiguration = 0
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    jpegs = [cv2.imencode(".jpg", f[..., ::-1])[1].tobytes() for f in rgb]
    ds.PixelData = encapsulate(jpegs, has_bot=False)
    ds["PixelData"].VR = "OB"
    seeds["jpeg_rgb"] = _save(ds)

    wide = (grey.astype(np.int16) * 8 - 1000).astype(np.int16)
    ds = _dataset(wide, BitsAllocated=16, BitsStored=12, HighBit=11, PixelRepresentation=1)
    ds.WindowCenter, ds.WindowWidth = 0, 2000
    ds.PixelData = wide.astype("<i2").tobytes()
    seeds["native_int16"] = _save(ds)

    ds = _dataset(rgb, SamplesPerPixel=3, PhotometricInterpretation="RGB")
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2)).tobytes()
    seeds["native_rgb_planar"] = _save(ds)
    return seeds


# Real files nobody here wrote (pydicom's test suite): JPEG Baseline/Extended/2000, RLE,
# planar RGB, YBR_FULL_422, odd sizes.
REAL_FILES = (
    "SC_rgb_small_odd_jpeg.dcm", "SC_rgb_small_odd.dcm", "JPEG-lossy.dcm", "MR_small_RLE.dcm",
    "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm", "SC_jpeg_no_color_transform.dcm",
    "SC_ybr_full_422_uncompressed.dcm", "MR_small_jp2klossless.dcm",
)  # fmt: skip


def real_dicoms() -> dict[str, bytes]:
    """name -> bytes of the REAL_FILES that are installed (pydicom ships them)."""
    import pydicom

    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    return {n: (folder / n).read_bytes() for n in REAL_FILES if (folder / n).is_file()}


def _pixel_offset(data: bytes) -> int:
    at = data.rfind(b"\xe0\x7f\x10\x00")
    return at if at > 0 else len(data)


def mutate(data: bytes, rng: random.Random, n_edits: int | None = None) -> bytes:
    """1-4 byte edits, 80% inside the header (before the Pixel Data tag)."""
    buf = bytearray(data)
    header_end = _pixel_offset(data)
    for _ in range(n_edits or rng.randint(1, 4)):
        if not buf:
            break
        in_header = rng.random() < 0.8 and header_end > 132
        lo, hi = (132, min(header_end, len(buf))) if in_header else (0, len(buf))
        if hi <= lo:
            lo, hi = 0, len(buf)
        pos = rng.randrange(lo, hi)
        kind = rng.randrange(7)
        if kind == 0:
            buf[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            buf[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x20, 0x5C, 0x2E, 0x2D, 0x41])
        elif kind == 2:  # an integer field
            size = rng.choice([2, 4])
            value = rng.choice(INTS) & (0xFFFF if size == 2 else 0xFFFFFFFF)
            buf[pos : pos + size] = value.to_bytes(size, "little")
        elif kind == 3:  # junk of the same length over a text value
            junk = rng.choice(JUNK)
            buf[pos : pos + len(junk)] = junk
        elif kind == 4:
            del buf[pos : pos + rng.randint(1, 16)]
        elif kind == 5:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del buf[rng.randrange(len(buf)) :]
    return bytes(buf)


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang


def _last_line(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
    return f"{type(exc).__name__} at {where}: {str(exc)[:120]}"


def check_dicom(data: bytes, folder: Path, timeout: float = 10.0) -> str | None:
    """Open, probe (16 frames + sector) and decode first/last frame of mutated `data`."""
    import warnings

    from thyrovid.errors import UserError
    from thyrovid.io import open_video
    from thyrovid.io.dicom_meta import captured_stderr
    from thyrovid.io.probe import probe

    path = folder / "fuzz.dcm"
    path.write_bytes(data)
    old = signal.signal(signal.SIGALRM, _alarm)
    result = None
    try:
        with warnings.catch_warnings(record=True) as caught, captured_stderr() as noise:
            warnings.simplefilter("always")
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                probe(path)
                with open_video(path) as video:
                    video.frames([0, len(video) - 1])
            except UserError as exc:
                text = str(exc)
                if "\n" in text or not text.startswith(str(path)):
                    result = f"bad UserError line: {text[:200]!r}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except Hang:
        return "hang"
    except BaseException as exc:  # noqa: BLE001 - what the fuzz is looking for (a panic too)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _last_line(exc)
    finally:
        signal.signal(signal.SIGALRM, old)
    if result is None and caught:
        result = f"noise: warning {str(caught[0].message)[:100]}"
    if result is None and noise:
        result = f"noise: stderr {noise[0][:100]}"
    return result


SEED_TABLE = (
    b"patient_id,video,center,label,frame,x0,y0,x1,y1,split\n"
    b"P001,videos/a.dcm,A,benign,5,16,8,40,32,train\n"
    b"P002,videos/b.dcm,B,malignant,20,16,8,40,32,test\n"
    b'"P003",videos/c.dcm,A,1,7,1.5,2,30,30,\n'
)


def mutate_table(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        pos = rng.randrange(len(buf))
        kind = rng.randrange(5)
        if kind == 0:
            buf[pos:pos] = rng.choice([b",", b";", b"\t", b"\r", b"\x00", b'"', b"\n", b"\xff"])
        elif kind == 1:
            buf[pos] = rng.randrange(256)
        elif kind == 2:
            del buf[pos : pos + rng.randint(1, 8)]
        elif kind == 3:  # duplicate a line
            lines = bytes(buf).split(b"\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            buf = bytearray(b"\n".join(lines))
        else:
            buf[pos:pos] = rng.choice(JUNK)
    return bytes(buf)


def check_table(data: bytes, folder: Path) -> str | None:
    """Read mutated cohort.csv bytes with the cohort reader (tolerant, then strict)."""
    from thyrovid.cohort.schema import read_cohort
    from thyrovid.errors import UserError

    path = folder / "cohort.csv"
    path.write_bytes(data)
    try:
        read_cohort(path)
        return None
    except UserError as exc:
        text = str(exc)
        if "\n" in text or "\r" in text:
            return f"bad UserError line: {text[:200]!r}"
        return None
    except BaseException as exc:  # noqa: BLE001 - a panic too
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _last_line(exc)


def campaign(seconds: float, target: str = "dicom", seed: int = 0) -> dict:
    """Mutate for `seconds`; counts of inputs, tracebacks (by site), hangs, peak RSS."""
    rng = random.Random(seed)
    failures: dict[str, int] = {}
    n = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if target == "dicom":
            seeds = list(seed_dicoms().values()) + list(real_dicoms().values())
            for s in seeds:
                assert check_dicom(s, folder) is None
        while time.monotonic() - start < seconds:
            if target == "dicom":
                result = check_dicom(mutate(rng.choice(seeds), rng), folder)
            else:
                result = check_table(mutate_table(SEED_TABLE, rng), folder)
            n += 1
            if result is not None:
                failures[result] = failures.get(result, 0) + 1
    return {
        "target": target,
        "seconds": round(time.monotonic() - start, 1),
        "inputs": n,
        "tracebacks": sum(v for k, v in failures.items() if k != "hang"),
        "hangs": failures.get("hang", 0),
        "sites": len(failures),
        "failures": dict(sorted(failures.items(), key=lambda kv: -kv[1])[:40]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--target", choices=("dicom", "table"), default="dicom")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(json.dumps(campaign(a.seconds, a.target, a.seed), indent=1))
    sys.exit(0)
