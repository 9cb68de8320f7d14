"""Lesson 07's experiments on the resilience mechanisms: measured call runs, retry and hedging runs, backoff plots,
a deadline gateway."""
