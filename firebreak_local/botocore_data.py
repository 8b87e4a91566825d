"""One botocore data loader for every session in the process, installed as this module is imported (runtime imports
it before moto, which opens sessions as it is imported).

Each botocore session builds its own loader, and each loader parses again the service models and endpoint files it
is asked for: moto's EC2 module opens three sessions as it is imported and every mock_aws start gives boto3 a new
default session, so one process parsed the EC2 model six times and the endpoints file five. The files do not change
while a process runs, and a loader already hands what it parsed to every client of its session.

moto reads the models once more through a loader of its own, which adds moto's extras to them in place, so the two
cannot share what they parse; they share the text read from disk instead (one EC2 model is 4.4 MB after gunzip).
"""

from __future__ import annotations

import functools
import gc
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

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


@functools.cache
def _text(full_path: str, open_method: Callable[[str, str], IO[bytes]]) -> str:
    with open_method(full_path, "rb") as file:
        return file.read().decode("utf-8")


_parsing = threading.Lock()


def _load_file(self: Any, full_path: str, open_method: Callable[[str, str], IO[bytes]]) -> Any:
    """botocore's JSONFileLoader._load_file, for data that lives as long as the process (loaders keep what they load).

    botocore parses into OrderedDicts, which plain dicts (ordered since Python 3.7) are as far as botocore and moto
    read them, at a third of the cost. The collector is paused while a model's hundred thousand objects are made, and
    they go to the permanent generation at once: left to it, collections during and after the parse walked them all,
    a third of a model's read. What else lives at that moment is frozen with them (as at the engine's own moments).
    """
    if not Path(full_path).is_file():
        return None
    text = _text(full_path, open_method)
    with _parsing:
        enabled = gc.isenabled()
        gc.disable()
        try:
            data = json.loads(text)
        finally:
            if enabled:
                gc.enable()
        gc.freeze()
    return data


def share() -> None:
    """From now on every botocore session loads its data through one loader per AWS_DATA_PATH."""
    botocore.loaders.create_loader = _shared_loader
    botocore.loaders.JSONFileLoader._load_file = _load_file  # type: ignore[attr-defined]
    # botocore.session holds create_loader by name from its import on.
    session = sys.modules.get("botocore.session")
    if session is not None:
        session.create_loader = _shared_loader  # type: ignore[attr-defined]


share()
