"""Lesson exercises: a checker per exercise that says right or wrong and why, and a solution an instructor can reveal.

    verdict = check("02-ttl", my_ttl_registration, server=server, consul_http=CONSUL)
    print(solution("02-ttl"))
    reveal_solutions()        # the instructor's switch (the dashboard's toggle): every verdict now shows its solution
"""
from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, replace
from html import escape
from typing import Any, Callable

from lab_services.registry.consul_health import ConsulHealth
from lab_services.registry.base import Registrar
from lab_services.runtime.cluster import Cluster


@dataclass(frozen=True)
class Verdict:
    """The outcome of a checker: `ok`, and a sentence saying what was right or what to change."""

    exercise: str
    ok: bool
    message: str
    solution: str = ""  # filled in only once the instructor has revealed the solutions

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        text = f"{'✔ right' if self.ok else '✘ not yet'} ({self.exercise}): {self.message}"
        return text + (f"\n\nOne solution:\n{self.solution}" if self.solution else "")

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        html = f"<p style='color:{colour}'><b>{'✔ right' if self.ok else '✘ not yet'}</b> ({self.exercise}): {escape(self.message)}</p>"
        return html + (f"<p>One solution:</p><pre>{escape(self.solution)}</pre>" if self.solution else "")


def _check_leader(answer: Any, cluster: Cluster) -> Verdict:
    """00-leader: `answer` is the process name of the Consul server that leads right now."""
    leader = cluster.status()["consul"]["leader"]
    if answer is None or answer is Ellipsis:
        return Verdict("00-leader", False, "set `answer` to a process name such as 'consul-2'")
    if answer != leader:
        return Verdict("00-leader", False, f"{answer!r} is not the leader; look for the ★ in the overview, or at status()['consul']")
    return Verdict("00-leader", True, f"{leader} leads the Consul servers; the others forward writes to it")


def _check_import(summary: Any) -> Verdict:
    """01-import: an ImportSummary from one ImportUsers call of three users, exactly one of them invalid."""
    if summary is None or not hasattr(summary, "imported"):
        return Verdict("01-import", False, "return the ImportSummary that stub.ImportUsers(...) answers")
    rejected = list(summary.rejected)
    if summary.imported != 2 or len(rejected) != 1:
        return Verdict("01-import", False, f"expected 2 imported and 1 rejected, got {summary.imported} imported and "
                       f"{len(rejected)} rejected; send three records in one call, one with an empty name or a bad email "
                       "(and use emails no earlier run used)")
    reason = rejected[0].reason
    if not reason.split(":")[0] in ("name", "email"):
        return Verdict("01-import", False, f"the record was rejected for {reason!r}, not for a bad field; make one record invalid")
    return Verdict("01-import", True, f"one call, three records: record {rejected[0].index} was refused ({reason}) and the rest kept")


def _check_ttl(register: Callable[..., Any], server: Any, consul_http: str, hold: float = 6.0) -> Verdict:
    """02-ttl: `register(server, consul_http)` registers the server with a 5 s TTL check, keeps it passing, returns the registrar."""
    name = "02-ttl"
    registrar = register(server, consul_http)
    if not isinstance(registrar, Registrar):
        return Verdict(name, False, f"your function returned {registrar!r}; return the registrar you started")
    health = ConsulHealth(consul_http)
    try:
        service_id = registrar.registration.service_id
        if not registrar.wait_registered(5):
            return Verdict(name, False, f"{service_id} was not registered within 5 s; did you call start()? ({registrar.last_error})")
        ttl_checks = [s for s in health.checks(service_id) if s.kind == "ttl"]
        if not ttl_checks:
            return Verdict(name, False, f"{service_id} has no TTL check in Consul; add CheckSpec('ttl', ttl='5s')")
        stored = health.definition(ttl_checks[0].check_id) or {}
        specs = [c for c in registrar.registration.checks if c.kind == "ttl"]
        ttl = stored.get("TTL") or (specs[0].ttl if specs else None)
        if ttl not in ("5s", "5000ms"):
            return Verdict(name, False, f"the TTL check's ttl is {ttl!r}; the exercise asks for 5 s")
        # Held longer than the TTL itself: only heartbeats can keep it passing that long.
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            status = health.status(ttl_checks[0].check_id)
            if status != "passing":
                return Verdict(name, False, f"the TTL check is {status!r}; it must be sent 'passing' before 5 s run out "
                               "(ConsulRegistrar does that every ttl/3 while it runs)")
            time.sleep(0.25)
        return Verdict(name, True, f"{ttl_checks[0].check_id} stayed passing for {hold:g} s, longer than its TTL: the heartbeats work")
    finally:
        registrar.stop()
        health.close()


def _check_resume(next_request: Callable[[list[int]], Any]) -> Verdict:
    """05-resume: `next_request(received)` builds the WatchUsersRequest that resumes after the sequences received."""
    import grpc

    from lab_services.service import UserServer, user_pb2, user_pb2_grpc

    name = "05-resume"
    server = UserServer(name="exercise05").start()
    try:
        for n in range(5):
            server.store.create(f"user {n}", f"resume{n}@example.org")

        def delivered(request: Any) -> list[int]:
            with grpc.insecure_channel(server.address) as channel:
                call = user_pb2_grpc.UserServiceStub(channel).WatchUsers(request, timeout=0.5)
                got = []
                try:
                    got.extend(event.sequence for event in call)
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise
                return got

        resumed = next_request([1, 2, 3])
        if not isinstance(resumed, user_pb2.WatchUsersRequest):
            return Verdict(name, False, f"next_request returned {resumed!r}; return a user_pb2.WatchUsersRequest")
        got = delivered(resumed)
        if got != [4, 5]:
            hint = ("since_sequence is the last sequence you saw, not the next one you want" if got == [5]
                    else "resume from the last sequence you saw, so nothing is delivered twice" if got[:1] and got[0] <= 3
                    else "set since_sequence to the last sequence received")
            return Verdict(name, False, f"after receiving 1, 2, 3 the server sent {got}; expected [4, 5]: {hint}")
        fresh = next_request([])
        if not isinstance(fresh, user_pb2.WatchUsersRequest) or fresh.HasField("since_sequence"):
            got = delivered(fresh) if isinstance(fresh, user_pb2.WatchUsersRequest) else []
            return Verdict(name, False, f"with nothing received yet, leave since_sequence unset (it is optional); "
                           f"setting it replays history: the server sent {got}")
        return Verdict(name, True, "resumed after 3 with exactly 4 and 5, and a fresh watch asks only for new changes")
    finally:
        server.stop(0)


def _check_mtls_channel(make_channel: Callable[..., Any], material: Any) -> Verdict:
    """06-mtls: `make_channel(address, material)` returns a channel that passes an mTLS server's handshake."""
    import grpc

    from lab_services.service import UserServer, user_pb2, user_pb2_grpc
    from lab_services.tls.explain import explain

    name = "06-mtls"
    server = UserServer(name="exercise06", tls=material.server_tls(mtls=True)).start()
    try:
        channel = make_channel(server.address, material)
        if not isinstance(channel, grpc.Channel):
            return Verdict(name, False, f"make_channel returned {channel!r}; return a grpc.Channel")
        with channel:
            try:
                user_pb2_grpc.UserServiceStub(channel).GetUser(user_pb2.GetUserRequest(id="u-404"), timeout=3, wait_for_ready=False)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:  # the servicer answered: the handshake worked
                    return Verdict(name, True, "the mTLS server accepted your certificate and the call reached the service")
                return Verdict(name, False, f"the call failed: {explain(err, client_tls=True, client_cert=True)}")
        return Verdict(name, False, "the call for user u-404 succeeded, which it never should; is this the lab's server?")
    finally:
        server.stop(0)


def _check_retry_config(config: Any, error_rate: float = 0.5, calls: int = 100) -> Verdict:
    """07-retry: a service config that retries CreateUser on UNAVAILABLE with 4 attempts; tried against a failing server."""
    import json

    from lab_services.lessons.resilience.retries import attempts_experiment
    from lab_services.resilience import channel_options
    from lab_services.service import UserServer

    name = "07-retry"
    if not isinstance(config, dict) or "methodConfig" not in config:
        return Verdict(name, False, f"return a service config dict with 'methodConfig', e.g. from retry_service_config(...); got {config!r}")
    policies = [c.get("retryPolicy") for c in config["methodConfig"]
                if any(n.get("method") in (None, "CreateUser") for n in c.get("name", []))]
    policy = next((p for p in policies if p), None)
    if policy is None:
        return Verdict(name, False, "no retryPolicy applies to CreateUser; name the method (or the whole service) in 'name'")
    if policy.get("maxAttempts") != 4:
        return Verdict(name, False, f"maxAttempts is {policy.get('maxAttempts')!r}; the exercise asks for 4 attempts in all")
    if "UNAVAILABLE" not in policy.get("retryableStatusCodes", []):
        return Verdict(name, False, "retryableStatusCodes must include UNAVAILABLE, the code the failing server answers")
    server = UserServer(name="exercise07").start()
    try:
        server.faults.set(error_rate=error_rate)
        result = attempts_experiment(server, channel_options(json.loads(json.dumps(config))), calls=calls)
    finally:
        server.stop(0)
    # With four attempts a call fails only if all four do: error_rate**4, about 6 in 100 at 0.5.
    if result["ok"] < calls * 0.85:
        return Verdict(name, False, f"only {result['ok']} of {calls} calls succeeded ({result['server_attempts']} attempts reached "
                       "the server); is the backoff short enough (e.g. initial_backoff='0.01s') for calls with a 5 s deadline?")
    return Verdict(name, True, f"{result['ok']} of {calls} calls succeeded against a server failing half its calls, "
                   f"with {result['server_attempts']} attempts: retries turned {error_rate:.0%} errors into "
                   f"about {error_rate ** 4:.0%}")


def _check_canary(make_channel: Callable[..., Any], watcher: Any, share: float = 0.1, calls: int = 500) -> Verdict:
    """03-canary: `make_channel(watcher, share)` returns a channel sending `share` of calls to v2 instances, the rest to v1."""
    import collections

    import grpc

    from lab_services.service import user_pb2, user_pb2_grpc

    name = "03-canary"
    versions = {i.id: i.meta.get("version") for i in watcher.instances()}
    if "v2" not in versions.values():
        return Verdict(name, False, "the watcher lists no v2 instance; add one with cluster.add_service(version='v2') and try again")
    channel = make_channel(watcher, share)
    if channel is None or not hasattr(channel, "unary_unary"):
        return Verdict(name, False, f"your function returned {channel!r}; return a channel, e.g. a PickerChannel over the watcher")
    try:
        stub = user_pb2_grpc.UserServiceStub(channel)
        tag = f"{time.time_ns():x}"
        counts = collections.Counter(
            stub.CreateUser(user_pb2.CreateUserRequest(name=f"canary {n}", email=f"canary-{tag}-{n}@example.com"), timeout=5).served_by
            for n in range(calls)
        )
    except grpc.RpcError as err:
        return Verdict(name, False, f"a call through your channel failed: {err.code().name}: {err.details()}")
    finally:
        channel.close()
    versions = {i.id: i.meta.get("version") for i in watcher.instances()}
    to_v2 = sum(n for who, n in counts.items() if versions.get(who) == "v2") / calls
    strays = sorted(who for who in counts if versions.get(who) not in ("v1", "v2"))
    if strays:
        return Verdict(name, False, f"calls went to {strays}, which are neither v1 nor v2")
    # Within about 3.5 standard deviations; plain round robin over three v1 and one v2 (25%) falls outside.
    if abs(to_v2 - share) > 0.05:
        return Verdict(name, False, f"{to_v2:.0%} of {calls} calls went to v2, expected about {share:.0%}; "
                       "a CanarySplit policy with canary_share=share does this")
    return Verdict(name, True, f"{to_v2:.0%} of {calls} calls went to the v2 canary (asked {share:.0%}), the rest to v1: {dict(counts)}")


def _check_lease(register: Callable[..., Any], server: Any, endpoints: list[str], ttl: int = 3) -> Verdict:
    """04-lease: `register(server, endpoints)` registers the server in etcd under a 3 s lease and keeps it alive."""
    from lab_services.registry.etcd import etcd_client, parse_endpoint

    name = "04-lease"
    registrar = register(server, endpoints)
    if not isinstance(registrar, Registrar) or registrar.backend != "etcd":
        if isinstance(registrar, Registrar):
            registrar.stop()
        return Verdict(name, False, f"your function returned {registrar!r}; return the EtcdRegistrar you started")
    client = etcd_client([parse_endpoint(e) for e in endpoints], 2.0)
    try:
        if not registrar.wait_registered(5):
            return Verdict(name, False, f"not registered within 5 s; did you call start()? ({registrar.last_error})")
        value, meta = client.get(registrar.key)
        if value is None or not meta.lease_id:
            return Verdict(name, False, f"{registrar.key} is not in etcd under a lease")
        granted = client.get_lease_info(meta.lease_id).grantedTTL
        if granted != ttl:
            return Verdict(name, False, f"the lease was granted for {granted} s; the exercise asks for {ttl} s (lease_ttl={ttl})")
        # Held longer than the TTL: only keepalives can keep the key that long.
        time.sleep(ttl + 1)
        if client.get(registrar.key)[0] is None:
            return Verdict(name, False, f"{registrar.key} vanished within {ttl + 1} s: the lease is not being kept alive")
        stopped = time.monotonic()
        registrar.stop(deregister=False)
        while client.get(registrar.key)[0] is not None:
            if time.monotonic() - stopped > ttl + 3:
                return Verdict(name, False, f"{registrar.key} outlived its lease by 3 s after the keepalives stopped")
            time.sleep(0.1)
        gone = time.monotonic() - stopped
        return Verdict(name, True, f"kept alive past its {ttl} s TTL, then gone {gone:.1f} s after the keepalives stopped")
    finally:
        # An expired lease cannot be revoked; only a registration still alive is removed.
        if registrar.registered:
            registrar.stop()
        client.close()


def _check_promql(promql: Any, url: str, window: str = "30s") -> Verdict:
    """08-promql: `promql` gives CreateUser calls per second per instance, as Prometheus finds them through Consul."""
    from lab_services.metrics import prometheus

    name = "08-promql"
    if not isinstance(promql, str) or not promql.strip():
        return Verdict(name, False, "set `my_query` to a PromQL string, e.g. 'sum by (instance) (rate(...[30s]))'")
    try:
        at = time.time()
        theirs = prometheus.query(url, promql, at=at)
    except prometheus.PrometheusError as err:
        return Verdict(name, False, f"Prometheus refused it: {err}")
    reference = (f'sum by (instance) (rate(grpc_server_handled_total{{job="{prometheus.CONSUL_JOB}",'
                 f'grpc_method="CreateUser"}}[{window}]))')
    expected = {s.labels.get("instance"): s.value for s in prometheus.query(url, reference, at=at)}
    got = {s.labels.get("instance"): s.value for s in theirs}
    if set(got) != set(expected):
        extra = sorted({k for s in theirs for k in s.labels} - {"instance"})
        hint = f" (your series also carry {extra}: sum them away with `sum by (instance)`)" if extra else ""
        return Verdict(name, False, f"expected one series per instance {sorted(expected)}, got {sorted(map(str, got))}{hint}")
    for instance, value in expected.items():
        if abs(got[instance] - value) > max(0.05 * value, 0.01):
            return Verdict(name, False, f"{instance}: your query says {got[instance]:.2f}/s, CreateUser calls are {value:.2f}/s; "
                           f"count only grpc_method=\"CreateUser\" of job {prometheus.CONSUL_JOB} (each instance is scraped "
                           f"twice, once per discovery path), over [{window}]")
    return Verdict(name, True, f"{len(expected)} instances, CreateUser rates {', '.join(f'{k}={v:.1f}/s' for k, v in sorted(expected.items()))}")


def _check_tuning(settings: Any, cluster: Cluster, within: float = 2.5) -> Verdict:
    """09-tune: check settings with which a killed instance leaves the passing set within `within` seconds."""
    from lab_services.lessons import drills

    name = "09-tune"
    allowed = {"check_interval", "check_timeout", "ttl"}
    if not isinstance(settings, dict) or not settings or not set(settings) <= allowed:
        return Verdict(name, False, f"return a dict with some of {sorted(allowed)}, e.g. {{'check_interval': '5s'}}")
    try:
        result = drills.service_kill(cluster, recover=False, **settings)
    except ValueError as err:
        return Verdict(name, False, f"Consul would refuse that: {err}")
    removed = result.summary["seconds_to_removed"]
    if removed is None or removed > within:
        return Verdict(name, False, f"the killed probe left the passing set after {removed} s; it must within {within} s. "
                       "A kill -9 is noticed at the next check, so the interval bounds the wait")
    return Verdict(name, True, f"removed {removed:.2f} s after kill -9 with {settings}; Consul's 1 s minimum interval is the floor")


_CHECKERS: dict[str, Callable[..., Verdict]] = {
    "00-leader": _check_leader,
    "01-import": _check_import,
    "02-ttl": _check_ttl,
    "08-promql": _check_promql,
    "09-tune": _check_tuning,
    "03-canary": _check_canary,
    "04-lease": _check_lease,
    "05-resume": _check_resume,
    "06-mtls": _check_mtls_channel,
    "07-retry": _check_retry_config,
}

_SOLUTIONS = {
    "08-promql": """
        my_query = 'sum by (instance) (rate(grpc_server_handled_total{job="lab-services",grpc_method="CreateUser"}[30s]))'
    """,
    "09-tune": """
        # A kill -9 fails the very next gRPC check, so the interval bounds the wait; 1 s is Consul's floor.
        my_settings = {"check_interval": "1s", "check_timeout": "1s"}
    """,
    "00-leader": """
        answer = cluster.status()["consul"]["leader"]
    """,
    "01-import": """
        import uuid

        def import_three(stub):
            tag = uuid.uuid4().hex[:8]
            records = [
                user_pb2.CreateUserRequest(name="Grace", email=f"grace-{tag}@example.com"),
                user_pb2.CreateUserRequest(name="", email=f"nobody-{tag}@example.com"),
                user_pb2.CreateUserRequest(name="Linus", email=f"linus-{tag}@example.com"),
            ]
            return stub.ImportUsers(iter(records))
    """,
    "02-ttl": """
        from lab_services.registry.consul import ConsulRegistrar
        from lab_services.registry.spec import CheckSpec, ServiceRegistration

        def my_ttl_registration(server, consul_http):
            registration = ServiceRegistration(
                name="exercise", service_id=f"exercise-{server.port}", address="127.0.0.1", port=server.port,
                checks=[CheckSpec("ttl", ttl="5s")],
            )
            return ConsulRegistrar(registration, consul_http=consul_http).start()
    """,
    "03-canary": """
        from lab_services.discovery import CanarySplit, PickerChannel

        def canary_channel(watcher, share):
            policy = CanarySplit(stable_meta={"version": "v1"}, canary_meta={"version": "v2"}, canary_share=share)
            return PickerChannel(watcher, policy=policy)
    """,
    "04-lease": """
        from lab_services.registry.etcd import EtcdRegistrar
        from lab_services.registry.spec import ServiceRegistration

        def register_with_lease(server, endpoints):
            registration = ServiceRegistration(name="exercise", service_id=f"exercise-{server.port}",
                                               address="127.0.0.1", port=server.port)
            return EtcdRegistrar(registration, endpoints=endpoints, lease_ttl=3).start()
    """,
    "05-resume": """
        def next_request(received):
            if not received:
                return user_pb2.WatchUsersRequest()  # only new changes
            return user_pb2.WatchUsersRequest(since_sequence=max(received))
    """,
    "06-mtls": """
        from lab_services.tls import channel

        def my_mtls_channel(address, material):
            return channel(address, material, mtls=True)  # trust the lab CA and present material.client
    """,
    "07-retry": """
        my_retry_config = retry_service_config(
            methods=["CreateUser"], max_attempts=4, initial_backoff="0.01s", max_backoff="0.1s",
            retryable_status_codes=["UNAVAILABLE"],
        )
    """,
}


_revealed = False


def reveal_solutions(on: bool = True) -> None:
    """The instructor's switch: while on, every verdict carries the exercise's solution (in this kernel)."""
    global _revealed
    _revealed = bool(on)


def solutions_revealed() -> bool:
    return _revealed


def names() -> list[str]:
    return sorted(_CHECKERS)


def check(exercise: str, *args: Any, **kwargs: Any) -> Verdict:
    """Run the checker of `exercise` (e.g. "02-ttl") on the learner's answer; see each lesson for its arguments."""
    if exercise not in _CHECKERS:
        raise KeyError(f"no exercise named {exercise!r}; the exercises are {', '.join(names())}")
    try:
        verdict = _CHECKERS[exercise](*args, **kwargs)
    except Exception as err:  # A learner's half-written answer must get a verdict, not a traceback.
        verdict = Verdict(exercise, False, f"checking your answer raised {type(err).__name__}: {err}")
    return replace(verdict, solution=solution(exercise)) if _revealed else verdict


def solution(exercise: str) -> str:
    """The code of one way to solve `exercise`, as text to print (or to exec, as the tests do)."""
    if exercise not in _SOLUTIONS:
        raise KeyError(f"no exercise named {exercise!r}; the exercises are {', '.join(names())}")
    return textwrap.dedent(_SOLUTIONS[exercise]).strip() + "\n"
