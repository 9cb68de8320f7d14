"""Lesson 04's lease control: stop a registration's keepalives (as a crash would) or register again with another TTL."""

from __future__ import annotations

import ipywidgets as widgets

from lab_services.registry.etcd import EtcdRegistrar
from lab_services.registry.spec import ServiceRegistration


class LeaseControl:
    """Buttons over one etcd registration; `registrar` is always the current one (a new one after "register again").

    Holding the registrar here, not in a notebook global, lets the buttons replace it and later cells read it.
    """

    def __init__(self, registrar: EtcdRegistrar, registration: ServiceRegistration, endpoints: list[str]):
        self.registrar = registrar
        self.registration = registration
        self.endpoints = endpoints
        self.ttl_slider = widgets.IntSlider(
            value=registrar.lease_ttl,
            min=2,
            max=10,
            description="lease TTL (s)",
            style={"description_width": "initial"},
        )
        self.stop_button = widgets.Button(description="stop keepalive", button_style="danger", icon="stop")
        self.register_button = widgets.Button(description="register again", button_style="success", icon="play")
        self.state = widgets.HTML()
        self.stop_button.on_click(self.stop_keepalive)
        self.register_button.on_click(self.register_again)
        self.widget = widgets.VBox(
            [widgets.HBox([self.ttl_slider, self.stop_button, self.register_button]), self.state]
        )

    def stop_keepalive(self, _: object = None) -> None:
        """The crash drill: refreshes stop, and the key stays until the lease runs out."""
        self.registrar.stop(deregister=False)
        self.state.value = f"keepalive stopped; the key expires within {self.registrar.lease_ttl} s"

    def register_again(self, _: object = None) -> None:
        """A new registration under a new lease with the slider's TTL."""
        if self.registrar.registered:  # an expired lease has nothing left to remove
            self.registrar.stop()
        self.registrar = EtcdRegistrar(
            self.registration, endpoints=self.endpoints, lease_ttl=self.ttl_slider.value
        ).start()
        self.registrar.wait_registered(5)
        self.state.value = f"registered under lease {self.registrar.lease_id:x} with TTL {self.registrar.lease_ttl} s"
