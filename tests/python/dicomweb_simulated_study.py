"""A simulated study posted by the real dicomweb-client gets its derived series.

Run by the Rust integration test `dicomweb_client`, which starts petal and simulates the study:
    .venv/bin/python tests/python/dicomweb_simulated_study.py --url URL --token TOKEN --series DIR
Posts the series in DIR over STOW-RS and makes no further request but reads: waits (status
API) until petal has denoised it, then finds the derived series with QIDO and retrieves it
with WADO. Exits non-zero with the failed check.
"""

import argparse
import glob
import sys
import time

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient


def check(condition, message):
    if not condition:
        print("FAILED:", message)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--series", required=True)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    client = DICOMwebClient(url=f"{args.url}/dicomweb", headers=headers)

    sources = [pydicom.dcmread(path) for path in sorted(glob.glob(f"{args.series}/*.dcm"))]
    study, series = sources[0].StudyInstanceUID, sources[0].SeriesInstanceUID
    client.store_instances(datasets=sources)

    deadline = time.time() + 120
    while True:
        status = requests.get(f"{args.url}/api/v1/series/{series}", headers=headers, timeout=10).json()
        if status["state"] in ("done", "failed"):
            break
        check(time.time() < deadline, f"not denoised in time: {status}")
        time.sleep(0.2)
    check(status["state"] == "done", f"denoising failed: {status}")
    derived = status["derived_series_uid"]

    found = client.search_for_series(study_instance_uid=study)
    uids = [s["0020000E"]["Value"][0] for s in found]
    check(derived in uids, f"QIDO lists the derived series: {uids}")
    instances = client.retrieve_series(study, derived)
    check(len(instances) == len(sources), f"{len(instances)} derived instances for {len(sources)} sources")
    source_uids = {s.SOPInstanceUID for s in sources}
    for instance in instances:
        check(instance.ImageType[0] == "DERIVED", f"ImageType {instance.ImageType}")
        check(instance.StudyInstanceUID == study, "same study")
        check(instance.SourceImageSequence[0].ReferencedSOPInstanceUID in source_uids, "references a source slice")
        check(instance.Units == "BQML", "units stay BQML")
        check(instance.ContributingEquipmentSequence[-1].DeviceUID == status["model_version"]["device_uid"],
              "DeviceUID is the model version's UID")
    print(f"checks passed: {len(instances)} derived instances in series {derived}")


if __name__ == "__main__":
    main()
