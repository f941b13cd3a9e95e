"""Driving policies: object-list observations, SB3 features extractors, training, evaluation."""
