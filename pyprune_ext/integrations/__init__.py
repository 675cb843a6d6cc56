"""Bridges to other pruning libraries (each an optional extra; importing a bridge needs it)."""
