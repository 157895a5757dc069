"""Optimizers: arrays in, allocation out. Depends on numpy and the model only."""
