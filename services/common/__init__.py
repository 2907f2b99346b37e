"""The shared kernel: the only package that domain services import from each other."""
