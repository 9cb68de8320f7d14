"""Long-lived streams, one concept per module: resuming a watch (`resume`), writing to every instance (`fan_out`),
flow control (`flow_control`), how a stream ends under deadlines and cancellation (`deadlines`), and long-lived
streams starving a thread-pool server but not an asyncio one (`starvation`).

    writer = FanOutWriter(watcher)                    # every change goes to every instance, in the same order
    watch = ResumableWatch(watcher).start()           # follows one instance; resumes on another when it dies
"""

from lab_services.lessons.streaming.deadlines import stream_outcome
from lab_services.lessons.streaming.fan_out import FanOutWriter
from lab_services.lessons.streaming.flow_control import FlowSample, backpressure_experiment, plot_flow
from lab_services.lessons.streaming.resume import Received, ResumableWatch, Switch
from lab_services.lessons.streaming.starvation import compare_server_kinds

__all__ = [
    "FanOutWriter",
    "FlowSample",
    "Received",
    "ResumableWatch",
    "Switch",
    "backpressure_experiment",
    "compare_server_kinds",
    "plot_flow",
    "stream_outcome",
]
