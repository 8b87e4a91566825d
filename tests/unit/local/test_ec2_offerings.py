"""moto's EC2 instance-type offerings are read per location type and Region when asked for, as moto reads them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import moto
from moto import mock_aws
from moto.ec2.models import instance_types
from moto.utilities.utils import load_resource

from firebreak_local import ec2_offerings
from tests.support import ROOT

OFFERINGS = Path(moto.__file__).parent / ec2_offerings.OFFERINGS


def _as_moto_reads_it(location_type: str, region: str) -> list[dict[str, str]]:
    (data_file,) = (OFFERINGS / location_type).glob(f"{region}.json*")
    offerings: list[dict[str, str]] = load_resource(f"{ec2_offerings.OFFERINGS}{location_type}/{data_file.name}")
    return [{**offering, "LocationType": location_type} for offering in offerings]


def test_importing_the_engine_reads_no_offerings_file_and_an_instance_reads_its_regions_only() -> None:
    # GIVEN a fresh interpreter that records moto's reads of its resource files
    probe = """
import moto.utilities.utils as utils
read = utils.load_resource_as_bytes
reads = []
def recording(resource):
    if "instance_type_offerings" in resource:
        reads.append(resource)
    return read(resource)
utils.load_resource_as_bytes = recording
import firebreak_local.engine
print(len(reads))
import boto3
from moto import mock_aws
with mock_aws():
    boto3.client("ec2", region_name="eu-west-1").run_instances(
        ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1
    )
print(" ".join(reads))
"""
    # WHEN it imports the engine, then runs an instance
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    imported, ran = result.stdout.splitlines()
    # THEN the import read none of the 90 files, and the instance its Region's offerings of its location type
    assert imported == "0"
    assert ran == f"{ec2_offerings.OFFERINGS}region/eu-west-1.json.gz"


def test_every_regions_offerings_are_what_moto_reads_for_it() -> None:
    offerings = instance_types.INSTANCE_TYPE_OFFERINGS
    assert set(offerings) == {path.name for path in OFFERINGS.iterdir()}
    for location_type, regions in offerings.items():
        assert isinstance(regions, ec2_offerings.Regions)
        assert sorted(regions) == sorted(path.name.split(".")[0] for path in (OFFERINGS / location_type).iterdir())
        assert len(regions) == len(list(regions.keys())) > 20
        for region, read in regions.items():
            assert read == _as_moto_reads_it(location_type, region)


def test_a_region_without_a_file_is_missing_as_from_a_dict() -> None:
    regions = instance_types.INSTANCE_TYPE_OFFERINGS["region"]
    assert "mars-north-1" not in regions
    assert regions.get("mars-north-1", []) == []
    try:
        regions["mars-north-1"]
    except KeyError as error:
        assert error.args == ("mars-north-1",)
    else:
        raise AssertionError("no KeyError")


def test_described_offerings_are_the_regions_own(aws: None) -> None:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="ap-southeast-2")
        described = ec2.describe_instance_type_offerings(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}]
        )["InstanceTypeOfferings"]
    expected = [
        offering
        for offering in _as_moto_reads_it("availability-zone", "ap-southeast-2")
        if offering["InstanceType"] == "t3.micro"
    ]
    assert described == expected
    assert {offering["Location"] for offering in described} >= {"ap-southeast-2a", "ap-southeast-2b"}
