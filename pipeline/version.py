"""The pipeline's version: stored with every call and run, and part of each call's skip key."""

__version__ = "0.2.1"
