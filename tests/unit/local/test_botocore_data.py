"""botocore's data files are read once per process and parsed as botocore parses them, into plain dicts."""

from __future__ import annotations

import gc
import gzip
import json
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import IO

import botocore
import botocore.loaders

from firebreak_local import botocore_data
from tests.support import ROOT

SNS_MODEL = next((Path(botocore.__file__).parent / "data" / "sns").glob("*/service-2.json.gz"))


def _open(name: str, mode: str) -> IO[bytes]:
    return Path(name).open(mode)  # noqa: SIM115 - the loader closes it


def test_a_model_parses_to_what_botocore_parses_it_to_in_the_same_order_as_plain_dicts() -> None:
    # GIVEN the SNS service model as botocore's own reader parses it
    with gzip.open(SNS_MODEL, "rb") as file:
        original = json.loads(file.read().decode("utf-8"), object_pairs_hook=OrderedDict)
    # WHEN a loader reads it
    loaded = botocore.loaders.Loader().load_service_model("sns", "service-2")
    # THEN it holds the same keys and values in the same order, none of them an OrderedDict
    assert json.dumps(loaded) == json.dumps(original)
    assert type(loaded) is dict
    assert type(loaded["shapes"]["PublishInput"]["members"]) is dict


def test_two_loaders_read_a_file_from_disk_once_and_get_a_copy_each(tmp_path: Path) -> None:
    # GIVEN a data file, and an opener that counts its opens
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"shapes": {"A": {"type": "string"}}}))
    opened: list[str] = []

    def opener(name: str, mode: str) -> IO[bytes]:
        opened.append(name)
        return _open(name, mode)

    # WHEN two loaders parse it
    first = botocore_data._load_file(None, str(path), opener)
    second = botocore_data._load_file(None, str(path), opener)
    # THEN disk was read once, and each has an object of its own to add its extras to
    assert opened == [str(path)]
    assert first == second == {"shapes": {"A": {"type": "string"}}}
    assert first is not second
    assert botocore_data._load_file(None, str(tmp_path / "absent.json"), opener) is None


def test_the_collector_is_as_the_caller_left_it_after_a_parse(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("{}")
    assert gc.isenabled()
    botocore_data._load_file(None, str(path), _open)
    assert gc.isenabled()
    gc.disable()
    try:
        botocore_data._load_file(None, str(path), _open)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_importing_the_engine_parses_the_ec2_service_model_once() -> None:
    # GIVEN a fresh interpreter that counts botocore's reads of the EC2 service model (~450 ms a read)
    probe = """
import botocore.loaders as loaders
read = loaders.JSONFileLoader.load_file
reads = []
def counting(self, path, *args, **kwargs):
    if path.endswith("/ec2/2016-11-15/service-2"):
        reads.append(path)
    return read(self, path, *args, **kwargs)
loaders.JSONFileLoader.load_file = counting
import firebreak_local.engine
print(len(reads))
"""
    # WHEN it imports the engine (every module of it that imports moto shares botocore_data's one loader first)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    # THEN the model was parsed once, not once per session moto's EC2 opens as it is imported
    assert result.stdout.strip() == "1"
