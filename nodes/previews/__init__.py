"""Preview nodes and helpers: what the user sees of a clip while and after it is made."""
