"""The Learner's monitoring, in two parts: `drift` (the sliding windows, Evidently's drift test and the
error figures of one learner; no Prometheus) and `metrics` (every Prometheus series of the Learner,
fed by a monitor through its sink and by the core's counts). This package imports neither, so
importing `metrics` does not pull in pandas and Evidently."""
