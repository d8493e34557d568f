"""Policies: Vowpal Wabbit contextual bandits, exploration, reward shaping and evaluation."""
