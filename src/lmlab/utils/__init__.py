"""Thin glue between Hydra, Lightning and the console."""
