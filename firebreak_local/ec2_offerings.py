"""moto's EC2 instance-type offerings, read from disk per location type and Region at their first look-up.

moto reads all 90 offering files (three location types by some thirty Regions) as its EC2 models are imported: 130 ms
of every engine process's start, a sixth of a one-event `firebreak run`, for a RunInstances that checks its instance
type against one Region's file. Imported before anything imports moto's EC2 models, this module imports them with
those reads deferred; imported after, it leaves them as moto read them.
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import Any

# Before moto's EC2 models, which open botocore sessions as they are imported: one loader for all.
from firebreak_local import botocore_data  # noqa: F401

# isort: split
from moto.utilities import utils as moto_utils

MODULE = "moto.ec2.models.instance_types"
OFFERINGS = "ec2/resources/instance_type_offerings/"
Offerings = list[dict[str, Any]]

_read_from_disk = moto_utils.load_resource
_reading = threading.Lock()


class Regions(dict[str, Offerings]):
    """One location type's offerings by Region, as moto's dict of them, each Region's read at its first look-up."""

    def __init__(self, location_type: str, files: dict[str, str]) -> None:
        super().__init__()
        self.location_type = location_type
        self._files = files

    def __missing__(self, region: str) -> Offerings:
        if region not in self._files:
            raise KeyError(region)
        with _reading:
            if not dict.__contains__(self, region):
                offerings: Offerings = _read_from_disk(self._files[region])
                for offering in offerings:
                    offering["LocationType"] = self.location_type  # as moto's import does
                dict.__setitem__(self, region, offerings)
            return dict.__getitem__(self, region)

    def get(self, region: str, default: Any = None) -> Any:
        return self[region] if region in self._files else default

    def __contains__(self, region: object) -> bool:
        return region in self._files

    def __len__(self) -> int:
        return len(self._files)

    def __iter__(self) -> Any:
        return iter(self._files)

    def keys(self) -> Any:
        return self._files.keys()

    def values(self) -> Any:
        return self._whole().values()

    def items(self) -> Any:
        return self._whole().items()

    def _whole(self) -> dict[str, Offerings]:
        return {region: self[region] for region in self._files}


def _import_with_offerings_deferred() -> None:
    if MODULE in sys.modules:
        return
    deferred: dict[str, dict[str, str]] = {}

    def load_resource(resource: str) -> Any:
        if not resource.startswith(OFFERINGS):
            return _read_from_disk(resource)
        # ec2/resources/instance_type_offerings/{location type}/{region}.json[.gz]
        location_type, data_file = resource.removeprefix(OFFERINGS).split("/")
        deferred.setdefault(location_type, {})[data_file.split(".")[0]] = resource
        return []

    moto_utils.load_resource = load_resource
    try:
        instance_types = importlib.import_module(MODULE)
    finally:
        moto_utils.load_resource = _read_from_disk
        # Every module imported meanwhile that took the function by name gets moto's own back.
        for module in list(sys.modules.values()):
            if getattr(module, "load_resource", None) is load_resource:
                module.load_resource = _read_from_disk  # type: ignore[attr-defined]
    for location_type, files in deferred.items():
        instance_types.INSTANCE_TYPE_OFFERINGS[location_type] = Regions(location_type, files)


_import_with_offerings_deferred()
