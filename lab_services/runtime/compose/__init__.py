"""The compose runtime: the lab's Consul, etcd, Prometheus and user services as containers of one compose project.

`ComposeCluster` (in `cluster.py`) offers the same `Cluster` interface as the local runtime; `topology.py`
says where each container listens, `engine.py` talks to the Docker engine and the compose CLI, and
`configs.py` writes the compose copies of the configuration the local runtime generates.
"""
