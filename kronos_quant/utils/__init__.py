"""Small helpers with no domain knowledge: atomic file writes, hashing, progress bars, environment switches."""
