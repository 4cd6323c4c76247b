"""Diffusion receiver: SDM-compatible denoiser, noise schedules, samplers and guidance."""
