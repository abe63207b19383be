"""A gate's states, apart from the service so the process's sweep can name them without it."""

PENDING = "pending"
DECIDED = frozenset({"approved", "rejected", "timed_out"})
