"""The lab's sample user service: run it in-process with UserServer, or as `python -m lab_services.service`.

    from lab_services.service import UserServer, AdminClient, user_pb2, user_pb2_grpc

Names are loaded on first use: `python -m lab_services.service` imports this package first and must not pay
for the admin client (urllib) or anything else the running service does not need.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "SERVED_BY_HEADER": "lab_services.service.interceptors",
    "SERVICE_NAME": "lab_services.service.servicer",
    "AdminClient": "lab_services.service.admin",
    "UserServer": "lab_services.service.server",
    "user_pb2": "lab_services._proto.lab.user.v1.user_service_pb2",
    "user_pb2_grpc": "lab_services._proto.lab.user.v1.user_service_pb2_grpc",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(_EXPORTS[name])
        return module if module.__name__.endswith(("_pb2", "_pb2_grpc")) else getattr(module, name)
    raise AttributeError(f"module 'lab_services.service' has no attribute {name!r}")
