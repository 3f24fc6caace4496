"""ptybatch: run the same ML experiment on two deep-learning stacks and trust the result."""

__version__ = "0.1.0"
