#!/usr/bin/env python3
"""Independent check of a denoised series against its source, in SUV.

SUVbw is computed here from the raw header tags with pydicom and numpy only (not with
petal's code): pixel * RescaleSlope + RescaleIntercept in Bq/ml, times body weight (g)
over the injected dose decayed from RadiopharmaceuticalStartTime to SeriesTime
(DecayCorrection START). Regions come from the simulator's label maps (truth/*.u8).

usage: suv_check.py STUDY_DIR SOURCE_SERIES_DIR DERIVED_SERIES_DIR
prints one JSON object.
"""
import glob
import json
import math
import sys

import numpy as np
import pydicom


def seconds(tm):
    tm = tm.split(".")[0].ljust(6, "0")
    return int(tm[0:2]) * 3600 + int(tm[2:4]) * 60 + int(tm[4:6])


def suv_factor(ds):
    assert ds.Units == "BQML", ds.Units
    assert ds.DecayCorrection == "START", ds.DecayCorrection
    info = ds.RadiopharmaceuticalInformationSequence[0]
    dose = float(info.RadionuclideTotalDose)
    half_life = float(info.RadionuclideHalfLife)
    elapsed = seconds(ds.SeriesTime) - seconds(info.RadiopharmaceuticalStartTime)
    decayed = dose * math.exp(-elapsed * math.log(2) / half_life)
    return float(ds.PatientWeight) * 1000.0 / decayed


def load(folder):
    slices = [pydicom.dcmread(f) for f in glob.glob(f"{folder}/*.dcm")]
    slices.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    factors = [suv_factor(d) for d in slices]
    volume = np.stack([
        (d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept)) * f
        for d, f in zip(slices, factors)
    ])
    return volume, factors


def erode(mask, steps, axial=1):
    """Erosion by `steps` pixels in-plane (4-neighbourhood) and `axial` slices along z, numpy
    only: a region is uniform only if the slices above and below it (which the 2.5D network
    sees with it) are the same tissue."""
    for step in range(max(steps, axial)):
        m = mask.copy()
        if step < steps:
            m[:, 1:, :] &= mask[:, :-1, :]
            m[:, :-1, :] &= mask[:, 1:, :]
            m[:, :, 1:] &= mask[:, :, :-1]
            m[:, :, :-1] &= mask[:, :, 1:]
        if step < axial:
            m[1:, :, :] &= mask[:-1, :, :]
            m[:-1, :, :] &= mask[1:, :, :]
            m[0, :, :] = False
            m[-1, :, :] = False
        mask = m
    return mask


def main():
    study, source_dir, derived_dir = sys.argv[1:4]
    truth = json.load(open(f"{study}/truth/truth.json"))
    size, slices = truth["grid"]["size"], truth["grid"]["slices"]
    shape = (slices, size, size)
    read = lambda name, dtype: np.fromfile(f"{study}/truth/{truth[name]}", dtype=dtype).reshape(shape)
    activity = read("activity", np.float32)
    liver = read("liver", np.uint8) > 0
    lesions = read("lesions", np.uint8) > 0
    body = read("body", np.uint8) > 0
    soft = np.isclose(activity, truth["uptake"]["soft_tissue"]) & ~lesions
    regions = {
        "liver": erode(liver & ~lesions, 2),
        "soft_tissue": erode(soft, 2),
        "body": body,
        # Lesions are a few voxels across: all their voxels, not eroded.
        "lesions": lesions,
    }
    source, source_factors = load(source_dir)
    derived, derived_factors = load(derived_dir)
    result = {
        "suv_factor_source": source_factors[0],
        "suv_factor_derived": derived_factors[0],
        "suv_factors_identical": all(a == b for a, b in zip(source_factors, derived_factors)),
    }
    for name, mask in regions.items():
        if not mask.any():
            result[name] = {"voxels": 0}
            continue
        s, d = source[mask], derived[mask]
        result[name] = {
            "voxels": int(mask.sum()),
            "source_mean": float(s.mean()),
            "derived_mean": float(d.mean()),
            "mean_change_percent": float((d.mean() / s.mean() - 1.0) * 100.0),
            "source_std": float(s.std()),
            "derived_std": float(d.std()),
            "std_change_percent": float((d.std() / s.std() - 1.0) * 100.0),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
