"""STOW -> QIDO -> WADO against a running petal with the real dicomweb-client.

Run by the Rust integration test `dicomweb_client`, which starts the server:
    .venv/bin/python tests/python/dicomweb_roundtrip.py --url http://127.0.0.1:PORT --token TOKEN
Exits non-zero with the failed check on any mismatch.
"""

import argparse
import io
import sys

import numpy as np
import pydicom
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"


def pet_series(slices, transfer_syntax):
    """A small PET series as pydicom datasets, with per-slice rescale slopes."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    datasets = []
    for index in range(slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        ds.file_meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPClassUID, ds.SOPInstanceUID = PET_IMAGE_STORAGE, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientSex = "Roundtrip^Pat", "RT-" + study[-8:], "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20261001", "083000", "ACC-RT", "7"
        ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "PT", 5, "PET AC roundtrip"
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [-50.0, -50.0, 2.0 * index]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [3.0, 3.0], 2.0
        ds.Units, ds.RescaleIntercept, ds.RescaleSlope = "BQML", 0, 0.25 * (index + 1)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = 24, 20
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        pixels = (np.arange(24 * 20, dtype=np.uint16).reshape(24, 20) * (index + 3)) % 4000
        ds.PixelData = pixels.tobytes()
        datasets.append(ds)
    return datasets


class Checks:
    def __init__(self):
        self.count = 0

    def equal(self, what, got, expected):
        if got != expected:
            print(f"FAILED: {what}: got {got!r}, expected {expected!r}", file=sys.stderr)
            sys.exit(1)
        self.count += 1


def value(item, tag):
    return item[tag]["Value"][0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    client = DICOMwebClient(url=f"{args.url}/dicomweb", headers={"Authorization": f"Bearer {args.token}"})
    check = Checks()

    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        originals = pet_series(4, syntax)
        study = originals[0].StudyInstanceUID
        series = originals[0].SeriesInstanceUID
        result = client.store_instances(originals)
        check.equal("instances listed as stored", len(result.ReferencedSOPSequence), 4)
        check.equal("no failures", "FailedSOPSequence" in result, False)

        found = client.search_for_studies(search_filters={"PatientID": originals[0].PatientID})
        check.equal("one study found", len(found), 1)
        check.equal("study UID", value(found[0], "0020000D"), study)
        check.equal("NumberOfStudyRelatedInstances", value(found[0], "00201208"), 4)
        check.equal("NumberOfStudyRelatedSeries", value(found[0], "00201206"), 1)
        check.equal("ModalitiesInStudy", found[0]["00080061"]["Value"], ["PT"])
        check.equal("PatientName", value(found[0], "00100010")["Alphabetic"], "Roundtrip^Pat")
        wildcard = client.search_for_studies(search_filters={"PatientName": "roundtrip*", "StudyDate": "20260101-20261231"})
        check.equal("wildcard and date range find the study", study in [value(s, "0020000D") for s in wildcard], True)

        series_found = client.search_for_series(study_instance_uid=study)
        check.equal("one series", len(series_found), 1)
        check.equal("NumberOfSeriesRelatedInstances", value(series_found[0], "00201209"), 4)
        instances_found = client.search_for_instances(study_instance_uid=study, series_instance_uid=series)
        check.equal("four instances", len(instances_found), 4)
        check.equal("instances in order", [value(i, "00200013") for i in instances_found], ["1", "2", "3", "4"] if isinstance(value(instances_found[0], "00200013"), str) else [1, 2, 3, 4])
        limited = client.search_for_instances(study_instance_uid=study, limit=2, offset=1)
        check.equal("limit and offset", len(limited), 2)
        included = client.search_for_series(study_instance_uid=study, fields=["Units"])
        check.equal("includefield from stored metadata", value(included[0], "00541001"), "BQML")

        retrieved = client.retrieve_series(study, series)
        check.equal("series retrieved whole", len(retrieved), 4)
        by_uid = {ds.SOPInstanceUID: ds for ds in retrieved}
        for original in originals:
            copy = by_uid[original.SOPInstanceUID]
            check.equal("pixels identical", np.array_equal(copy.pixel_array, original.pixel_array), True)
            check.equal("RescaleSlope kept", float(copy.RescaleSlope), float(original.RescaleSlope))
            # No transfer syntax asked for: PS3.18's default, explicit VR little endian.
            check.equal("served in explicit VR little endian", copy.file_meta.TransferSyntaxUID, ExplicitVRLittleEndian)
        one = client.retrieve_instance(study, series, originals[2].SOPInstanceUID)
        check.equal("instance retrieved", one.SOPInstanceUID, originals[2].SOPInstanceUID)
        # dicomweb-client asks for an instance with transfer-syntax=*: exactly as stored.
        check.equal("transfer syntax kept with transfer-syntax=*", one.file_meta.TransferSyntaxUID, syntax)
        check.equal("instance pixels", np.array_equal(one.pixel_array, originals[2].pixel_array), True)
        study_copy = client.retrieve_study(study)
        check.equal("study retrieved whole", len(study_copy), 4)

        metadata = client.retrieve_series_metadata(study, series)
        check.equal("metadata per instance", len(metadata), 4)
        check.equal("pixel data is bulk data", "BulkDataURI" in metadata[0]["7FE00010"], True)
        check.equal("metadata has Units", value(metadata[0], "00541001"), "BQML")
        frames = client.retrieve_instance_frames(study, series, originals[1].SOPInstanceUID, frame_numbers=[1])
        check.equal("one frame", len(frames), 1)
        check.equal("frame bytes are the pixel data", frames[0], originals[1].PixelData)
        rendered = client.retrieve_instance_rendered(study, series, originals[1].SOPInstanceUID, media_types=("image/png",))
        check.equal("rendered is a PNG", rendered[:8], b"\x89PNG\r\n\x1a\n")
        instance_metadata = client.retrieve_instance_metadata(study, series, originals[0].SOPInstanceUID)
        check.equal("instance metadata", value(instance_metadata, "00080018"), originals[0].SOPInstanceUID)

    # Deflated and RLE instances are accepted, returned byte for byte, and decoded for frames.
    for syntax in (DeflatedExplicitVRLittleEndian, RLELossless):
        original = pet_series(1, ExplicitVRLittleEndian)[0]
        expected_pixels = original.pixel_array.copy()
        if syntax == RLELossless:
            original.compress(RLELossless)
        else:
            original.file_meta.TransferSyntaxUID = syntax
        buffer = io.BytesIO()
        original.save_as(buffer, enforce_file_format=True)
        sent = buffer.getvalue()
        result = client.store_instances([pydicom.dcmread(io.BytesIO(sent))])
        check.equal(f"{syntax.name} stored", len(result.ReferencedSOPSequence), 1)
        study, series, sop = original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID
        copy = client.retrieve_instance(study, series, sop, media_types=(("application/dicom", "*"),))
        check.equal(f"{syntax.name} kept", copy.file_meta.TransferSyntaxUID, syntax)
        check.equal(f"{syntax.name} pixels", np.array_equal(copy.pixel_array, expected_pixels), True)
        frame = client.retrieve_instance_frames(study, series, sop, frame_numbers=[1])[0]
        check.equal(f"{syntax.name} frame decoded", frame, expected_pixels.astype("<u2").tobytes())

    nothing = client.search_for_studies(search_filters={"PatientID": "nobody-has-this-id"})
    check.equal("no match is an empty result", nothing, [])
    print(f"dicomweb-client round trip: {check.count} checks passed")


if __name__ == "__main__":
    main()
