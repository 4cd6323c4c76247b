"""Semantic transmission schemes (GESCO, SPIC, separation, ...) built from parts."""
