"""Names that travel on the wire between the lab's clients, services and registries, defined once for both ends.

A client reads the served-by header without loading the server that writes it, so the name lives here.
"""

from __future__ import annotations

# Response metadata on every call (failed ones too): the id of the instance that answered.
SERVED_BY_HEADER = "x-served-by"
# Request metadata carrying `Bearer <token>` for the token interceptors of lesson 07.
AUTHORIZATION_HEADER = "authorization"
# etcd keys of registered instances: <prefix>/<service name>/<instance id>, value the instance as JSON.
ETCD_SERVICES_PREFIX = "/services"
