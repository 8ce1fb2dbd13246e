"""Servers of the local stack, one module each."""
