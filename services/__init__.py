"""Eco² backend services."""
