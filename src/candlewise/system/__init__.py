"""Process plumbing: forked tasks, memory probes, process checks, shutdown, logging."""
