"""The worker runtime: wires the pure engine to the task hub. Owns tasks and threads;
never parses rows or envelopes (that is ``durablehub.taskhub``'s job)."""
