"""Functional core: pure functions from FHIR data and a date to decisions and cards.

Nothing in this package reads the clock, the network, Flask or the environment.
"""
