"""callbrief: call-recording analysis for complaint handling. Knows nothing of Prefect."""
from pipeline.version import __version__  # noqa: F401
