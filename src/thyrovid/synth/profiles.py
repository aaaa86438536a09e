"""Acquisition profiles of the phantom's centers (hospitals / scanners).

Each center differs in what a scanner and its settings change in the pixels: probe frequency
(speckle grain), field of view (pixel spacing), dynamic range, gain, time-gain compensation,
frame size, frame rate, compression and the case mix (prevalence of malignancy).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class CenterProfile:
    """One acquisition profile.

    Attributes:
        name: center name written to cohort.csv (`center` column).
        external: True for external-test centers (split "external").
        frame_size: default (H, W) of a frame in pixels, text margins included.
        depth_cm: imaging depth shown on screen; sets the pixel spacing (square pixels).
        frequency_mhz: probe centre frequency; higher = finer speckle grain.
        dynamic_range_db: log-compression dynamic range.
        gain_db: overall gain offset of the display mapping.
        tgc_slope: residual time-gain error, dB per cm of depth (0 = perfect TGC).
        fps: frame rate (frames per second).
        compression: "jpeg" (JPEG Baseline, MONOCHROME2) or "raw" (Explicit VR Little Endian).
        jpeg_quality: OpenCV JPEG quality (0-100) when compression is "jpeg".
        photometric: "MONOCHROME2" or "RGB" (raw only; RGB frames carry coloured text).
        prevalence: default fraction of malignant nodules.
        model_name: scanner model written to ManufacturerModelName.
    """

    name: str
    external: bool
    frame_size: tuple[int, int]
    depth_cm: float
    frequency_mhz: float
    dynamic_range_db: float
    gain_db: float
    tgc_slope: float
    fps: float
    compression: str
    jpeg_quality: int
    photometric: str
    prevalence: float
    model_name: str

    def sized(self, base: tuple[int, int] | None) -> CenterProfile:
        """Scale this center's frame size so that the default base 240x320 maps to `base`."""
        if base is None:
            return self
        h = max(48, round(self.frame_size[0] * base[0] / 240))
        w = max(64, round(self.frame_size[1] * base[1] / 320))
        return replace(self, frame_size=(h, w))


# fmt: off
def _center(name, external, size, depth, mhz, dr, gain, tgc, fps, comp, quality, photo, prev, model):
    return CenterProfile(name, external, size, depth, mhz, dr, gain, tgc, fps, comp, quality,
                         photo, prev, model)


# name, external, frame size, depth cm, MHz, dynamic range dB, gain dB, TGC error dB/cm, fps,
# compression, JPEG quality, photometric, prevalence, scanner model
DEFAULT_CENTERS: tuple[CenterProfile, ...] = (
    _center("int_a", False, (240, 320), 4.0, 12.0, 60.0, 0.0, 0.0, 25.0, "jpeg", 90, "MONOCHROME2", 0.70, "PH-L12 linear"),
    _center("int_b", False, (256, 336), 3.5, 10.0, 55.0, 2.0, 0.8, 30.0, "jpeg", 82, "MONOCHROME2", 0.70, "PH-L10 linear"),
    _center("ext_c", True, (232, 312), 4.5, 14.0, 66.0, -2.0, -0.6, 20.0, "jpeg", 75, "MONOCHROME2", 0.34, "PH-L14 linear"),
    _center("ext_d", True, (248, 328), 3.8, 9.0, 50.0, 4.0, 0.5, 15.0, "raw", 100, "RGB", 0.34, "PH-L9 linear"),
)
# fmt: on


def select_centers(
    names: list[str] | None,
    size: tuple[int, int] | None = None,
    prevalence_internal: float | None = None,
    prevalence_external: float | None = None,
) -> list[CenterProfile]:
    """The profiles named in `names` (all by default), resized and with prevalence overrides.

    Raises:
        ValueError: an unknown center name.
    """
    by_name = {c.name: c for c in DEFAULT_CENTERS}
    names = names or list(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown center(s) {unknown}; known: {sorted(by_name)}")
    out = []
    for n in names:
        c = by_name[n].sized(size)
        if c.external and prevalence_external is not None:
            c = replace(c, prevalence=prevalence_external)
        if not c.external and prevalence_internal is not None:
            c = replace(c, prevalence=prevalence_internal)
        out.append(c)
    return out
