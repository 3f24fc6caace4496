"""Small tools every layer may use: the error tree, atomic writes and locks, digests, cache paths, process identity.

Owns no ptybatch concept beyond those; imports only the standard library (and rich for the progress spinner).
"""
