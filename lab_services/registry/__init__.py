"""Register service instances with Consul or etcd, keep them registered, and remove them: one API for both.

from lab_services.registry import ServiceRegistration, CheckSpec, ConsulRegistrar, EtcdRegistrar
"""

from lab_services.core.backoff import Backoff
from lab_services.core.durations import parse_duration
from lab_services.registry.consul import ConsulRegistrar
from lab_services.registry.etcd import EtcdRegistrar, parse_instance
from lab_services.registry.spec import CheckSpec, RegistrationError, ServiceRegistration

__all__ = [
    "Backoff",
    "CheckSpec",
    "ConsulRegistrar",
    "EtcdRegistrar",
    "RegistrationError",
    "ServiceRegistration",
    "parse_duration",
    "parse_instance",
]
