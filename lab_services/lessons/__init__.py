"""The lessons layer and the one facade a notebook imports: `from lab_services import lessons as lab`.

    cluster = lab.ensure_cluster(consul_servers=1, etcd_members=1, services=3)
    watcher = lab.ConsulWatcher("user", cluster.status().consul.http).start()
    lab.check("03-v2-filter", v2_channel, consul_http=CONSUL)      # a verdict that says why
    lab.prom.query(cluster.status().prometheus.url, "up")
    lab.ServiceInstance("lesson02-1", "lesson02", lab.kernel_host(), server.port)  # where this kernel's servers are

It gathers what the lessons use from every layer below (runtime, registry, discovery, service, resilience,
tls, metrics, core) and adds the lessons' own experiments, drills, widgets, exercises and display helpers.
Nothing in the library imports this package (docs/architecture.md; tests/test_layers.py checks it).
"""

from __future__ import annotations

from lab_services.core.addresses import etcd_endpoints
from lab_services.core.durations import parse_duration
from lab_services.core.instance import ServiceInstance
from lab_services.core.network import is_lab_address, kernel_host
from lab_services.core.table import Table
from lab_services.core.wait import WaitTimeout, wait_for, wait_until
from lab_services.discovery import ConsulWatcher, EtcdWatcher, PickerChannel, a_records, srv_records
from lab_services.lessons import capstone, config_centre, connections, drills, inside_consul, tracing_lab
from lab_services.lessons.agent_log import AgentLog
from lab_services.lessons.blocking_query import time_a_blocking_query
from lab_services.lessons.calls import StreamCollector, chat, status_table
from lab_services.lessons.dns_answers import srv_ports
from lab_services.lessons.environment import check_environment
from lab_services.lessons.etcd_keys import keys_with_leases
from lab_services.lessons.exercises import check, published, reveal_solutions, solution
from lab_services.lessons.go_fleet import (
    GoInstance,
    calls_by_instance,
    consul_services,
    etcdctl_get,
    instance_keys,
    kill_under_load,
    run_go_client,
)
from lab_services.lessons.instances import start_registered
from lab_services.lessons.interval_floor import interval_floor
from lab_services.lessons.live_plots import plot_through_a_kill
from lab_services.lessons.only_passing import OnlyPassingAgent
from lab_services.lessons.policy_race import policy_split
from lab_services.lessons.predict import Prediction, predict, reveal
from lab_services.lessons.progress import ProgressBar
from lab_services.lessons.reflection import describe_methods, list_services
from lab_services.lessons.refusals import refusals
from lab_services.lessons.reporter import watch_checkpoints
from lab_services.lessons.resilience.auth import TokenProtectedServer, create_through
from lab_services.lessons.resilience.backoff_plot import plot_backoff
from lab_services.lessons.resilience.gateway import deadline_experiment
from lab_services.lessons.resilience.measure import plot_latencies
from lab_services.lessons.resilience.retries import attempts_experiment, hedging_experiment
from lab_services.lessons.resilience.service_config import service_config_mistakes
from lab_services.lessons.scrapes import metric_origins, wait_for_rates
from lab_services.lessons.streaming import (
    FanOutWriter,
    ResumableWatch,
    backpressure_experiment,
    compare_server_kinds,
    plot_flow,
    stream_outcome,
)
from lab_services.lessons.timeline import plot_timeline, timeline_table, wait_event
from lab_services.lessons.tls_catalogue import certificate_table, failure_catalogue
from lab_services.lessons.web_links import consul_ui, prometheus_targets
from lab_services.lessons.widgets import (
    ClusterOverview,
    FaultPanel,
    HealthBoard,
    HintLadder,
    LabDashboard,
    LeaseControl,
    StreamMeter,
    TrafficSplit,
    hints,
)
from lab_services.lessons.widgets.settings_editor import SettingsEditor
from lab_services.metrics import prometheus as prom
from lab_services.registry import CheckSpec, ConsulRegistrar, EtcdRegistrar, RegistrationError, ServiceRegistration
from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.etcd import etcd_client
from lab_services.resilience import BreakerRegistry, channel_options, retry_service_config
from lab_services.resilience.interceptors import BearerToken, ClientStats, RequireBearerToken
from lab_services.runtime import ClusterConfig, connect, ensure_cluster, go_programs
from lab_services.service import AdminClient, UserServer, user_pb2, user_pb2_grpc
from lab_services.service.config_store import CasConflict, StoreUnavailable
from lab_services.service.settings import SCHEMA as SETTINGS_SCHEMA
from lab_services.service.settings import InvalidSetting, Setting, int_between
from lab_services.service.settings import validate as validate_setting
from lab_services.tls import TLSMaterial, channel, san_names
from lab_services.tls import explain as tls_errors
from lab_services.tls.explain import explain

__all__ = [
    "SETTINGS_SCHEMA",
    "AdminClient",
    "AgentLog",
    "BearerToken",
    "BreakerRegistry",
    "CasConflict",
    "CheckSpec",
    "ClientStats",
    "ClusterConfig",
    "ClusterOverview",
    "ConsulHealth",
    "ConsulRegistrar",
    "ConsulWatcher",
    "EtcdRegistrar",
    "EtcdWatcher",
    "FanOutWriter",
    "FaultPanel",
    "HealthBoard",
    "HintLadder",
    "InvalidSetting",
    "LabDashboard",
    "LeaseControl",
    "OnlyPassingAgent",
    "PickerChannel",
    "Prediction",
    "ProgressBar",
    "RegistrationError",
    "RequireBearerToken",
    "ResumableWatch",
    "ServiceInstance",
    "ServiceRegistration",
    "Setting",
    "SettingsEditor",
    "StoreUnavailable",
    "StreamCollector",
    "StreamMeter",
    "TLSMaterial",
    "Table",
    "TokenProtectedServer",
    "TrafficSplit",
    "UserServer",
    "WaitTimeout",
    "a_records",
    "attempts_experiment",
    "backpressure_experiment",
    "certificate_table",
    "channel",
    "channel_options",
    "chat",
    "check",
    "check_environment",
    "compare_server_kinds",
    "config_centre",
    "connect",
    "connections",
    "consul_ui",
    "create_through",
    "deadline_experiment",
    "describe_methods",
    "drills",
    "ensure_cluster",
    "etcd_client",
    "etcd_endpoints",
    "explain",
    "failure_catalogue",
    "hedging_experiment",
    "hints",
    "int_between",
    "interval_floor",
    "is_lab_address",
    "kernel_host",
    "keys_with_leases",
    "list_services",
    "metric_origins",
    "parse_duration",
    "plot_backoff",
    "plot_flow",
    "plot_latencies",
    "plot_through_a_kill",
    "plot_timeline",
    "policy_split",
    "predict",
    "prom",
    "prometheus_targets",
    "published",
    "refusals",
    "retry_service_config",
    "reveal",
    "reveal_solutions",
    "san_names",
    "service_config_mistakes",
    "solution",
    "srv_ports",
    "srv_records",
    "start_registered",
    "status_table",
    "stream_outcome",
    "time_a_blocking_query",
    "timeline_table",
    "tls_errors",
    "user_pb2",
    "user_pb2_grpc",
    "validate_setting",
    "wait_event",
    "wait_for",
    "wait_for_rates",
    "wait_until",
]
__all__ += ["capstone", "inside_consul", "tracing_lab"]  # lessons 12-14
__all__ += [  # lesson 15
    "GoInstance",
    "calls_by_instance",
    "consul_services",
    "etcdctl_get",
    "go_programs",
    "instance_keys",
    "kill_under_load",
    "run_go_client",
]

# On a classroom hub (LAB_BOARD_URL set), checkpoint cells report to the instructor's board; otherwise nothing happens.
watch_checkpoints()
