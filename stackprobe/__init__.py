"""stackprobe: load a Compose stack under a memory limit, watch its containers, and report what the limit does."""

__version__ = "0.1.0"
