"""Shipped trained U-Net weights (one folder per task: weights.npz, config.json, train_log.json)."""
