"""Register service instances with Consul or etcd, keep them registered, and remove them: one API for both.

    from lab_services.registry import ServiceRegistration, CheckSpec, ConsulRegistrar, EtcdRegistrar
"""
from lab_services.registry.backoff import Backoff
from lab_services.registry.consul import ConsulRegistrar
from lab_services.registry.etcd import EtcdRegistrar, parse_instance
from lab_services.registry.spec import CheckSpec, RegistrationError, ServiceRegistration, parse_duration

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
