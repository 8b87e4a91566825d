"""A copy of everything moto holds, taken once and put back as often as wanted.

An engine's start is mostly provisioning: some sixty API calls through moto's request path that give the same data
every time for the same template and parameters. The first engine of a process does them and keeps a copy of the
data; the next starts from a fresh copy of that copy, a few milliseconds instead of the calls.

One `copy.deepcopy` takes every backend at once, so objects that refer to each other across services (a
subscription's queue, a role's policies) still do in the copy. The BackendDicts are moto's per-service globals:
never copied, only their contents.
"""

from __future__ import annotations

import copy
import copyreg
import threading
from dataclasses import dataclass
from typing import Any

# Before moto, whose EC2 module (imported by SSM's) opens botocore sessions as it is imported: one loader for all.
# And before its EC2 models, whose offerings files it reads as they are imported: each is read when asked for.
from firebreak_local import botocore_data, ec2_offerings  # noqa: F401

# isort: split
from moto.core import base_backend as moto_base_backend
from moto.ssm.models import ParameterDict


def _new_lock(_lock: Any) -> tuple[Any, tuple[()]]:
    # A lock in the data (SQS queues, DynamoDB streams) guards that object only: a copy gets a new, released one.
    return threading.Lock, ()


def _new_rlock(_lock: Any) -> tuple[Any, tuple[()]]:
    return threading.RLock, ()


def _new_condition(_condition: threading.Condition) -> tuple[Any, tuple[()]]:
    # Its acquire and release are the old lock's own methods, which copy would keep: the copy waits on a new lock.
    return threading.Condition, ()


def _rebuilt_parameter_dict(account_id: str, region_name: str, loaded: dict[str, bool]) -> ParameterDict:
    parameters = ParameterDict(account_id, region_name)
    vars(parameters).update(loaded)
    return parameters


def _parameter_dict(parameters: ParameterDict) -> tuple[Any, ...]:
    # moto's SSM store is a defaultdict whose constructor wants its account and Region, which copy cannot know.
    flags = {key: value for key, value in vars(parameters).items() if key.endswith("_loaded")}
    return (
        _rebuilt_parameter_dict,
        (parameters.account_id, parameters.region_name, flags),
        None,
        None,
        iter(parameters.items()),
    )


def _itself(backends: moto_base_backend.BackendDict[Any], _memo: dict[int, Any]) -> Any:
    return backends


copyreg.pickle(type(threading.Lock()), _new_lock)
copyreg.pickle(type(threading.RLock()), _new_rlock)
copyreg.pickle(threading.Condition, _new_condition)
copyreg.pickle(ParameterDict, _parameter_dict)
# A model that keeps a reference to a service's BackendDict (moto's global for that service) keeps the same global.
moto_base_backend.BackendDict.__deepcopy__ = _itself  # type: ignore[attr-defined]


def empty() -> bool:
    """Whether moto holds no data at all: what a copy can be taken of, or restored into, without mixing."""
    with moto_base_backend.backend_lock:
        return not any(len(backends) for backends in moto_base_backend.BackendDict._instances)  # type: ignore[misc]


@dataclass(frozen=True)
class MotoData:
    """The contents of every backend moto had loaded when it was taken; restore() puts a copy of them back."""

    _backends: tuple[tuple[moto_base_backend.BackendDict[Any], dict[str, Any]], ...]

    @classmethod
    def take(cls) -> MotoData:
        with moto_base_backend.backend_lock:
            loaded = list(moto_base_backend.BackendDict._instances)  # type: ignore[misc]
            return cls(tuple(zip(loaded, copy.deepcopy([dict(backends) for backends in loaded]), strict=True)))

    def restore(self) -> None:
        """Put a copy back into moto, which must hold nothing yet (a mock_aws just started on empty backends)."""
        owners = [backends for backends, _ in self._backends]
        contents = copy.deepcopy([contents for _, contents in self._backends])
        with moto_base_backend.backend_lock:
            instances = moto_base_backend.BackendDict._instances  # type: ignore[misc]
            for backends, accounts in zip(owners, contents, strict=True):
                if len(backends):
                    raise RuntimeError(f"moto's {backends.service_name} backends hold data already: nothing restored")
                dict.update(backends, accounts)
                if backends not in instances:
                    instances.append(backends)
