"""Adapters between dsrun's columnar metadata and other libraries' types (optional extras)."""
