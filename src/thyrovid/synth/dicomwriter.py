"""Frames -> an Ultrasound Multi-frame DICOM file, as a scanner would export it.

The imaging region sits inside the frame; around it the scanner burns in text (a pseudonymous
header, probe frequency, gain, dynamic range, depth) and a depth scale, never inside the region.
JPEG Baseline frames are encoded with OpenCV and encapsulated (with a Basic Offset Table);
uncompressed centers use Explicit VR Little Endian (MONOCHROME2 or RGB with coloured text).
UIDs are derived from the cohort seed, and no clock time is written, so files are reproducible.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from thyrovid.atomic import atomic_path
from thyrovid.synth.profiles import CenterProfile

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
FRAME_TIME_TAG = 0x00181063


@dataclass(frozen=True)
class Layout:
    """Where the imaging region lies in the frame: x0, y0, x1, y1 (pixels, x1/y1 exclusive)."""

    height: int
    width: int
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def region_hw(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def layout_for(frame_hw: tuple[int, int]) -> Layout:
    """Region placement for a frame size: header band on top, text and scale on the right."""
    h, w = frame_hw
    return Layout(h, w, round(0.05 * w), round(0.10 * h), w - round(0.13 * w), h - round(0.04 * h))


def overlay(layout: Layout, profile: CenterProfile, header: str, colour: bool) -> np.ndarray:
    """The burned-in annotations around the region -> (H, W, 3) uint8 (zeros inside the region)."""
    h, w = layout.height, layout.width
    img = np.zeros((h, w, 3), np.uint8)
    font = cv2.FONT_HERSHEY_PLAIN
    scale = max(0.5, h / 300.0)
    thick = 1
    text_c = (255, 235, 120) if colour else (220, 220, 220)
    scale_c = (120, 255, 255) if colour else (200, 200, 200)
    ty = max(8, layout.y0 - 5)
    cv2.putText(img, header, (layout.x0, ty), font, scale, text_c, thick, cv2.LINE_AA)
    right = [
        f"{profile.frequency_mhz:.0f}MHz",
        f"G{profile.gain_db:+.0f}",
        f"DR{profile.dynamic_range_db:.0f}",
        f"{profile.fps:.0f}Hz",
    ]
    line_h = max(9, int(13 * scale))
    for i, s in enumerate(right):
        y = layout.y0 + (i + 1) * line_h
        cv2.putText(img, s, (layout.x1 + 4, y), font, scale * 0.85, text_c, thick, cv2.LINE_AA)
    depth = f"{profile.depth_cm:.1f} cm"
    cv2.putText(
        img, depth, (layout.x1 + 4, layout.y1 - 2), font, scale * 0.85, text_c, thick, cv2.LINE_AA
    )
    # depth scale: a tick every 5 mm, longer every cm, just right of the region
    rh = layout.y1 - layout.y0
    px_per_mm = rh / (profile.depth_cm * 10.0)
    for mm in range(0, int(profile.depth_cm * 10) + 1, 5):
        y = layout.y0 + int(round(mm * px_per_mm))
        y = min(y, layout.y1 - 1)
        length = 5 if mm % 10 == 0 else 3
        cv2.line(img, (layout.x1 + 1, y), (layout.x1 + length, y), scale_c, 1)
    img[layout.y0 : layout.y1, layout.x0 : layout.x1] = 0
    return img


def compose(
    region_frames: np.ndarray, layout: Layout, annotations: np.ndarray, rgb: bool
) -> np.ndarray:
    """Place (T, h, w) region frames into full frames with annotations.

    Returns:
        (T, H, W) uint8, or (T, H, W, 3) uint8 when `rgb`.
    """
    n = len(region_frames)
    if rgb:
        out = np.broadcast_to(annotations, (n, *annotations.shape)).copy()
        out[:, layout.y0 : layout.y1, layout.x0 : layout.x1] = region_frames[..., None]
    else:
        out = np.broadcast_to(annotations[..., 0], (n, layout.height, layout.width)).copy()
        out[:, layout.y0 : layout.y1, layout.x0 : layout.x1] = region_frames
    return out


def uid(seed: int, *parts: object) -> str:
    """A deterministic DICOM UID "2.25.<int>" from the cohort seed and a name.

    2.25 UIDs are UUIDs written as integers; a name-based (version 5) UUID makes them
    reproducible. (pydicom's generate_uid ignores entropy sources when prefix is None.)
    """
    name = "/".join(["thyrovid-phantom", str(seed), *map(str, parts)])
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, name).int}"


def write_dicom(
    path: Path,
    frames: np.ndarray,
    layout: Layout,
    profile: CenterProfile,
    *,
    seed: int,
    patient_id: str,
    patient_name: str,
    study_key: str,
    series_key: str,
    series_number: int,
    study_date: str,
    regions: bool = True,
    transducer: str = "LINEAR",
) -> None:
    """Write one Ultrasound Multi-frame Image file atomically.

    Args:
        path: destination .dcm.
        frames: (T, H, W) or (T, H, W, 3) uint8 full frames (annotations included).
        layout: the imaging region inside the frame.
        profile: the center (compression, frame rate, spacing, probe).
        seed: cohort seed (UIDs).
        patient_id, patient_name: pseudonyms (e.g. "PH0001", "PHANTOM^0001").
        study_key, series_key: names the Study/Series UIDs are derived from.
        series_number: SeriesNumber.
        study_date: YYYYMMDD (synthetic).
        regions: write SequenceOfUltrasoundRegions (the layout's rectangle); False leaves the
            scan sector to be found from the pixels.
        transducer: TransducerType ("LINEAR"; the convex-probe fans of `synth.convex` say
            "CURVED LINEAR").
    """
    rgb = frames.ndim == 4
    sop_uid = uid(seed, "sop", series_key)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "THYROVID_SYNTH"
    jpeg = profile.compression == "jpeg" and not rgb
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", "0001"]
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "100000"
    ds.AccessionNumber = ""
    ds.Modality = "US"
    ds.Manufacturer = "thyrovid phantom"
    ds.InstitutionName = f"Phantom center {profile.name}"
    ds.ManufacturerModelName = profile.model_name
    ds.ReferringPhysicianName = ""
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = "THYROID"
    ds.StudyInstanceUID = uid(seed, "study", study_key)
    ds.SeriesInstanceUID = uid(seed, "series", series_key)
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = uid(seed, "for", series_key)
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.NumberOfFrames = len(frames)
    ds.FrameIncrementPointer = FRAME_TIME_TAG
    ds.FrameTime = f"{1000.0 / profile.fps:.3f}"
    ds.CineRate = int(round(profile.fps))
    ds.RecommendedDisplayFrameRate = int(round(profile.fps))
    ds.Rows, ds.Columns = int(frames.shape[1]), int(frames.shape[2])
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.UltrasoundColorDataPresent = 0
    ds.TransducerType = transducer
    if regions:
        ds.SequenceOfUltrasoundRegions = [_region_item(layout, profile)]
    if jpeg:
        encoded = []
        for f in frames:
            ok, buf = cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, profile.jpeg_quality])
            if not ok:  # pragma: no cover - OpenCV always encodes uint8 greyscale
                raise RuntimeError("JPEG encoding failed")
            encoded.append(buf.tobytes())
        ds.PixelData = encapsulate(encoded, has_bot=True)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        ds.LossyImageCompression = "01"
        raw = frames.size
        ds.LossyImageCompressionRatio = f"{raw / sum(len(e) for e in encoded):.2f}"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    else:
        ds.PixelData = np.ascontiguousarray(frames).tobytes()
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "00"
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)


def _region_item(layout: Layout, profile: CenterProfile) -> Dataset:
    """One SequenceOfUltrasoundRegions item (Max X1/Y1 inclusive, spacing in cm)."""
    spacing_cm = profile.depth_cm / (layout.y1 - layout.y0)
    item = Dataset()
    item.RegionSpatialFormat = 1  # 2D tissue image
    item.RegionDataType = 1
    item.RegionFlags = 0
    item.RegionLocationMinX0 = layout.x0
    item.RegionLocationMinY0 = layout.y0
    item.RegionLocationMaxX1 = layout.x1 - 1
    item.RegionLocationMaxY1 = layout.y1 - 1
    item.ReferencePixelX0 = (layout.x1 - layout.x0) // 2
    item.ReferencePixelY0 = 0
    item.ReferencePixelPhysicalValueX = 0.0
    item.ReferencePixelPhysicalValueY = 0.0
    item.PhysicalUnitsXDirection = 3  # cm
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = float(spacing_cm)
    item.PhysicalDeltaY = float(spacing_cm)
    item.TransducerFrequency = int(profile.frequency_mhz * 1000)  # kHz
    return item
