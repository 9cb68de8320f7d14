"""Service Discovery Lab: gRPC service registration and discovery against real Consul, etcd and Prometheus.

Three layers, imports only going down (docs/architecture.md): `core` at the bottom; the library
(`registry`, `discovery`, `service`, `runtime`, `resilience`, `tls`, `metrics`); and `lessons`, the one
facade a notebook imports: `from lab_services import lessons as lab`. This file imports nothing, because
every user-service process imports the package and should not pay for the rest of it.
"""
