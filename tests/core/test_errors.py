"""One exception root: every error the lab defines is a LabError, and still the built-in its callers catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

import grpc
import pytest

import lab_services
from lab_services.core.errors import LabError
from lab_services.core.ports import PortInUseError
from lab_services.core.wait import WaitTimeout
from lab_services.discovery.errors import NoInstanceError
from lab_services.lessons.capstone import ClientError
from lab_services.metrics.prometheus import PrometheusError
from lab_services.registry.consul import ConsulNotReadyError
from lab_services.registry.spec import RegistrationError
from lab_services.resilience.breaker import CircuitOpenError
from lab_services.service.config_store import CasConflict, StoreRefused, StoreUnavailable
from lab_services.service.faults import InvalidFault
from lab_services.service.settings import InvalidSetting
from lab_services.service.sidecar_http import BadRequest


def _modules() -> Iterator[object]:
    for info in pkgutil.walk_packages(lab_services.__path__, "lab_services."):
        # _proto is generated code, and importing a __main__ module runs its program.
        if info.name.startswith("lab_services._proto") or info.name.endswith(".__main__"):
            continue
        yield importlib.import_module(info.name)


def _error_classes() -> list[type[BaseException]]:
    """The exception classes each module defines itself; warning categories are not errors and are left out."""
    return [
        cls
        for module in _modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and issubclass(cls, BaseException) and not issubclass(cls, Warning)
    ]


def test_every_error_the_lab_defines_derives_from_lab_error():
    classes = _error_classes()
    assert len(classes) > 20, "the walk found too few exception classes; is every module still importable?"
    outside = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes if not issubclass(cls, LabError))
    assert outside == [], "these should derive from LabError or one of its kinds in lab_services.core.errors"


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (PortInUseError, RuntimeError),
        (WaitTimeout, TimeoutError),
        (PrometheusError, RuntimeError),
        (ConsulNotReadyError, RuntimeError),
        (RegistrationError, ValueError),
        (StoreUnavailable, OSError),
        (StoreRefused, ValueError),
        (CasConflict, RuntimeError),
        (BadRequest, ValueError),
        (InvalidFault, ValueError),
        (InvalidSetting, ValueError),
        (ClientError, ValueError),
    ],
)
def test_each_error_is_still_the_built_in_its_callers_catch(error, builtin):
    assert issubclass(error, LabError) and issubclass(error, builtin)


@pytest.mark.parametrize(
    "error", [NoInstanceError("user", "consul at 127.0.0.1:8500"), CircuitOpenError("127.0.0.1:5001", 1.5)]
)
def test_a_failed_call_made_up_locally_is_a_lab_error_and_still_a_finished_grpc_call(error):
    assert isinstance(error, LabError)
    assert isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call) and isinstance(error, grpc.Future)
    assert error.code() == grpc.StatusCode.UNAVAILABLE and error.done() and error.exception() is error
    with pytest.raises(grpc.RpcError) as caught:
        error.result()
    assert caught.value is error
    with pytest.raises(LabError):
        next(iter(error))
