"""Simulated ankle sensor: motion model of a sleeping child's legs, scenarios, ground truth."""
