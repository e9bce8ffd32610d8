"""Chaos target: exits at once with status 3."""

import sys

print("chaos: this server refuses to start", flush=True)
sys.exit(3)
