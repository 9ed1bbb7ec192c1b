"""callbrief: call-recording analysis for complaint handling. Knows nothing of Prefect."""

# Stored with every call: a rerun skips recordings already processed by the same version.
__version__ = "0.2.1"
