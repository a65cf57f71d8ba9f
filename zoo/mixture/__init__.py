"""Gaussian mixtures: scikit-learn-style estimators fitted by EM or CAVI, and Pyro models."""
