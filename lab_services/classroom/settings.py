"""What an instructor chooses for a classroom hub, checked before anything starts (the address, the passwords, how
learners run), and kept in one JSON file that the hub's configuration reads."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab_services.core.errors import BadInputError
from lab_services.core.learner import capacity

SPAWNERS = ("local", "docker")
# Passwords an instructor might leave in place from an example; on a reachable address they are refused.
KNOWN_DEFAULTS = frozenset({"", "password", "changeme", "discovery-lab", "jupyter", "workshop", "learner", "admin"})
# JupyterHub's SharedPasswordAuthenticator asks at least this much of each.
MIN_LEARNER_PASSWORD, MIN_ADMIN_PASSWORD = 8, 32


@dataclass
class HubSettings:
    """One classroom. `first_slot` moves every learner's ports along (tests and a second hub on one machine)."""

    data_dir: Path
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_port: int = 8081
    spawner: str = "local"
    admin: str = "instructor"
    learner_password: str = ""
    admin_password: str = ""
    api_token: str = field(default_factory=lambda: secrets.token_hex(32))
    first_slot: int = 0
    # docker: the lab's one JupyterLab image (compose/jupyter/Dockerfile, built by `docker compose build jupyter`),
    # each learner's network {net_prefix}.{slot}.0/24, and the checkout mounted over the image's copy (CI's image).
    image: str = "discovery-lab.invalid/jupyter:0.1.0"
    net_prefix: str = "10.214"
    mount_checkout: bool = False
    mem_limit: str = "1536M"
    board_port: int = 8082
    stuck_minutes: int = 10

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}/"

    @property
    def learners_reach_host(self) -> str:
        """The address of this machine that learners' containers reach (the classroom network's gateway), or ''
        when learners are processes of this machine and reach it on loopback."""
        return f"{self.net_prefix}.0.1" if self.spawner == "docker" else ""

    @property
    def on_loopback(self) -> bool:
        return ipaddress.ip_address(self.ip).is_loopback

    def validate(self) -> HubSettings:
        """BadInputError naming the field and the fix; passwords left empty on loopback are made up here."""
        try:
            ipaddress.ip_address(self.ip)
        except ValueError:
            raise BadInputError(f"invalid argument: ip: {self.ip!r} is not an IP address") from None
        for name in ("port", "hub_port", "board_port"):
            value = getattr(self, name)
            if not 1 <= value <= 65535:
                raise BadInputError(f"invalid argument: {name}: {value} is not a port (1-65535)")
        if self.spawner not in SPAWNERS:
            raise BadInputError(f"invalid argument: spawner: {self.spawner!r}; use one of {', '.join(SPAWNERS)}")
        octets = self.net_prefix.split(".")
        if (
            len(octets) != 2
            or not all(o.isdigit() and int(o) < 256 for o in octets)
            or not ipaddress.ip_network(f"{self.net_prefix}.0.0/16").is_private
        ):
            raise BadInputError(
                f"invalid argument: net_prefix: {self.net_prefix!r}; give the first two octets of a private /16 no "
                "network of this machine uses, e.g. 10.214 (learner N's network is then 10.214.N.0/24)"
            )
        if not 0 <= self.first_slot < capacity():
            raise BadInputError(f"invalid argument: first_slot: {self.first_slot}; use 0 to {capacity() - 1}")
        if not self.on_loopback:
            for name in ("learner_password", "admin_password"):
                if getattr(self, name).lower() in KNOWN_DEFAULTS:
                    raise BadInputError(
                        f"invalid argument: {name}: a hub on {self.ip} is reachable from other machines, so it "
                        "needs a password of your own (LAB_HUB_LEARNER_PASSWORD, LAB_HUB_ADMIN_PASSWORD); an empty "
                        "or example password is refused. On 127.0.0.1 the hub makes them up for you"
                    )
        self.learner_password = self.learner_password or secrets.token_urlsafe(9)
        self.admin_password = self.admin_password or secrets.token_urlsafe(33)
        for name, least in (("learner_password", MIN_LEARNER_PASSWORD), ("admin_password", MIN_ADMIN_PASSWORD)):
            if len(getattr(self, name)) < least:
                raise BadInputError(f"invalid argument: {name}: at least {least} characters (JupyterHub's rule)")
        return self

    def save(self) -> Path:
        """The settings file the hub's configuration reads (only its owner may read it: it holds the passwords)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "settings.json"
        path.touch(mode=0o600)
        path.write_text(json.dumps({**asdict(self), "data_dir": str(self.data_dir)}, indent=2))
        return path

    @classmethod
    def for_instructor(cls, data_dir: Path, **chosen: object) -> HubSettings:
        """What the instructor chose now, over what this classroom kept from its last start (so passwords and the
        hub's token survive a restart), over LAB_HUB_LEARNER_PASSWORD and LAB_HUB_ADMIN_PASSWORD."""
        kept = cls.load(data_dir / "settings.json").__dict__ if (data_dir / "settings.json").exists() else {}
        from_env = {
            "learner_password": os.environ.get("LAB_HUB_LEARNER_PASSWORD", ""),
            "admin_password": os.environ.get("LAB_HUB_ADMIN_PASSWORD", ""),
        }
        merged = {**kept, **{k: v for k, v in from_env.items() if v}, **{k: v for k, v in chosen.items() if v}}
        return cls(**{**merged, "data_dir": data_dir})

    @classmethod
    def load(cls, path: Path) -> HubSettings:
        raw = json.loads(path.read_text())
        return cls(**{**raw, "data_dir": Path(raw["data_dir"])})
