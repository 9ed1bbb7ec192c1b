"""Thin Prefect flows over `pipeline`."""
