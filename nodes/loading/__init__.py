"""Loader nodes and the model files they list: SD1.5 + IC-Light + temporal weights → a RelightVid MODEL."""
