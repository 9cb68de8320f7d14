"""Find service instances in Consul or etcd and call them: watchers, balancing policies, discovery-aware channels.

from lab_services.discovery import ConsulWatcher, EtcdWatcher, PickerChannel, NativeChannel
"""

from lab_services.core.instance import ServiceInstance
from lab_services.discovery.consul_watcher import ConsulWatcher
from lab_services.discovery.dns import SrvRecord, a_records, dns_target, srv_records
from lab_services.discovery.errors import NoInstanceError
from lab_services.discovery.etcd_watcher import EtcdWatcher
from lab_services.discovery.instance import DiscoveryEvent
from lab_services.discovery.native_channel import NativeChannel
from lab_services.discovery.picker_channel import PickerChannel
from lab_services.discovery.policies import (
    POLICIES,
    InstanceStats,
    LeastOutstanding,
    Policy,
    PowerOfTwo,
    Random,
    RoundRobin,
    Weighted,
    make_policy,
)
from lab_services.discovery.routing import CanarySplit, matches
from lab_services.discovery.watcher import Watcher

__all__ = [
    "POLICIES",
    "CanarySplit",
    "ConsulWatcher",
    "DiscoveryEvent",
    "EtcdWatcher",
    "InstanceStats",
    "LeastOutstanding",
    "NativeChannel",
    "NoInstanceError",
    "PickerChannel",
    "Policy",
    "PowerOfTwo",
    "Random",
    "RoundRobin",
    "ServiceInstance",
    "SrvRecord",
    "Watcher",
    "Weighted",
    "a_records",
    "dns_target",
    "make_policy",
    "matches",
    "srv_records",
]
