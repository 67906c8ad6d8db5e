"""ML2 mechanism driver of the local test cloud (tests/minicloud)."""
