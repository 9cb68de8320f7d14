"""Metrics the lab reads back: Prometheus's HTTP API (`prometheus`). The service's own exporter is `service.metrics`."""
