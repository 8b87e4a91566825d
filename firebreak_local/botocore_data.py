"""One botocore data loader for every session in the process, installed as this module is imported (runtime imports
it before moto, which opens sessions as it is imported).

Each botocore session builds its own loader, and each loader parses again the service models and endpoint files it
is asked for: moto's EC2 module opens three sessions as it is imported and every mock_aws start gives boto3 a new
default session, so one process parsed the EC2 model six times and the endpoints file five. The files do not change
while a process runs, and a loader already hands what it parsed to every client of its session.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import botocore.loaders

_create_loader = botocore.loaders.create_loader


class _SearchPaths(list[str]):
    """Every boto3 Session appends its data folder to its loader's paths: on a shared loader, once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    loader: Any = _create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)
    return loader


def share() -> None:
    """From now on every botocore session loads its data through one loader per AWS_DATA_PATH."""
    botocore.loaders.create_loader = _shared_loader
    # botocore.session holds create_loader by name from its import on.
    session = sys.modules.get("botocore.session")
    if session is not None:
        session.create_loader = _shared_loader  # type: ignore[attr-defined]


share()
