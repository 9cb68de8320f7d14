"""Lesson 15's exercise: read an instance's address from an etcd key in every layout a mixed fleet writes.

The learner writes `address_of(key, value)`: the address ('host:port') of the instance that key and value describe,
or None when they describe none. The checker asks it about the three layouts of the lesson (the lab's JSON, the
articles' keys, etcd's naming format), about values that are no instance, and about every key the lab's etcd holds
under the service's prefix right now, whose answers the lab's own watcher gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from lab_services.core.addresses import etcd_endpoints
from lab_services.lessons.exercises.verdict import Verdict
from lab_services.registry.etcd import etcd_client, parse_instance

NAME = "15-dialects"
# (key, value, the address, or None where the key describes no instance)
CASES: list[tuple[str, bytes, str | None]] = [
    ("/services/user/127.0.0.1:8080", b"", "127.0.0.1:8080"),
    ("/services/user/node-a", b"127.0.0.1:8081", "127.0.0.1:8081"),
    ("/services/user/e1", b'{"Op":0,"Addr":"127.0.0.1:8082","Metadata":null}', "127.0.0.1:8082"),
    (
        "/services/user/user-9",
        json.dumps(
            {"id": "user-9", "name": "user", "address": "127.0.0.1:5009", "host": "127.0.0.1", "port": 5009}
        ).encode(),
        "127.0.0.1:5009",
    ),
    ("/services/user/e2", b'{"Op":1,"Addr":"127.0.0.1:8083"}', None),
    ("/services/user/user-1", b"", None),
    ("/services/user/x", b"hello", None),
    ("/services/user/x", b"127.0.0.1:99999", None),
    ("/services/user/x", b'{"name": "user"}', None),
]


def check(address_of: Callable[[str, bytes], Any], endpoints: list[str], prefix: str = "/services/user/") -> Verdict:
    """15-dialects: `address_of(key, value)` returns 'host:port', or None for a key that describes no instance."""
    if not callable(address_of):
        return Verdict(NAME, False, "define address_of(key, value) returning 'host:port', or None")
    # The fixed cases first: a wrong answer there needs no server to be told.
    wrong = _first_wrong(address_of, CASES)
    if wrong:
        return Verdict(NAME, False, wrong)
    etcd = etcd_client(etcd_endpoints(endpoints), 2.0)
    try:
        live = [(meta.key.decode(), value) for value, meta in etcd.get_prefix(prefix)]
    finally:
        etcd.close()
    wrong = _first_wrong(address_of, [(key, value, _lab_reads(key, value)) for key, value in live])
    if wrong:
        return Verdict(NAME, False, f"{wrong} (a key the lab's etcd holds now)")
    return Verdict(
        NAME,
        True,
        f"right for all {len(CASES)} layouts and refusals, and for the {len(live)} keys etcd holds under {prefix} now",
    )


def _first_wrong(address_of: Callable[[str, bytes], Any], cases: list[tuple[str, bytes, str | None]]) -> str:
    """What is wrong with the first case `address_of` answers wrongly, or '' if it answers them all."""
    for key, value, expected in cases:
        try:
            answer = address_of(key, value)
        except Exception as err:  # a learner's bug, reported with the input that caused it
            return f"address_of({key!r}, {value!r}) raised {type(err).__name__}: {err}; return None instead"
        if answer != expected:
            why = "it describes no instance" if expected is None else f"expected {expected!r}"
            return f"address_of({key!r}, {value!r}) returned {answer!r}; {why}"
    return ""


def _lab_reads(key: str, value: bytes) -> str | None:
    try:
        return parse_instance(key, value)["address"]
    except ValueError:
        return None


def address_of(key: str, value: bytes) -> str | None:
    """The address in `key` and `value`, in any of the three layouts; None when they describe no instance."""
    text = value.decode(errors="replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return None
        # etcd's naming format, where only Op 0 (Add) is an instance; else the lab's own JSON.
        naming = "Addr" in data
        address = data.get("Addr" if naming else "address") if not naming or data.get("Op", 0) == 0 else None
    else:  # the articles': the value, or the key's last segment when the value is empty
        address = text or key.rstrip("/").rsplit("/", 1)[-1]
    if not isinstance(address, str):
        return None
    host, _, port = address.rpartition(":")
    return address if host and port.isdigit() and 0 < int(port) < 65536 else None


HINTS = (
    (
        "Decide by the value's first character: '{' means JSON (the lab's, with 'address', or etcd's naming, with "
        "'Addr' and 'Op'); anything else is the articles' layout, where an empty value means the address is the key's "
        "last segment (`key.rsplit('/', 1)[-1]`)."
    ),
    (
        "Then check what you found is an address: `host, _, port = address.rpartition(':')`, a host, a port of digits "
        "from 1 to 65535; and answer None for an etcd naming value whose `Op` is not 0, for JSON that does not parse, "
        "and for JSON with neither field."
    ),
)

SOLUTION = address_of
