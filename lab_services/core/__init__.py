"""The bottom layer: small things every other part of the lab needs and that need nothing of the lab.

One service instance (`instance`), loopback guard and ports (`ports`), retry delays (`backoff`), Go durations
(`durations`), header names on the wire (`wire`), locally made RPC errors (`rpc_errors`), where files live (`paths`),
one poll helper (`wait`), plain HTTP (`http`), etcd's JSON gateway (`etcd_gateway`) and displayable tables (`table`).
Nothing here imports the library or the lessons (docs/architecture.md); `tests/test_layers.py` checks it.
"""
