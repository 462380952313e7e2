"""Data access: the only package that talks to the metadata table (pynamodb)."""

from fleetscaler.dal.store import MetadataStore, get_store

__all__ = ["MetadataStore", "get_store"]
