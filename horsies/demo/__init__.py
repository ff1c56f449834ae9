"""The built-in demo application used by `horsies demo`."""
