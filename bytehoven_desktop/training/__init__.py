"""Training-side tools: data rendering, model definition and training loops."""
